"""EDSR (Lim et al., CVPRW 2017) in Flax NNX, as BasicSR's ``archs/edsr_arch.py`` and EDSR-PyTorch's
``model/edsr.py`` (the layout of the authors' releases).

* the DIV2K mean subtracted and the pixels scaled to [0, 255] (the references' ``img_range``), so published
  weights are used as they are;
* conv_first (3x3), ``num_blocks`` residual blocks (conv3x3, ReLU, conv3x3, scaled by ``res_scale`` and added
  to the input; no batch norm), conv_after_body plus a long skip from conv_first;
* the up-sampler: conv3x3(F -> 4F) + pixel shuffle 2 once (x2) or twice (x4), conv3x3(F -> 9F) + shuffle 3 (x3);
  conv_last (3x3), divided by 255 and the mean added back.

Baseline: 16 blocks of 64 features, ``res_scale`` 1. Paper size: 32 blocks of 256 features, ``res_scale`` 0.1
(not in the weights: the paper's training needed it to stay stable). Images are NHWC floats in [0, 1]; any size
works (no padding needed).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from sr_jax.models import rdn

RGB_MEAN = (0.4488, 0.4371, 0.4040)  # DIV2K's, the references' default.
IMG_RANGE = 255.0


def mean_of(channels: int) -> jax.Array:
  """The mean the network subtracts: DIV2K's RGB mean, or for gray images its average."""
  mean = jnp.asarray(RGB_MEAN if channels == 3 else (sum(RGB_MEAN) / 3,), jnp.float32)
  return mean.reshape(1, 1, 1, channels)


def upsampler(features: int, scale: int, *, dtype, rngs: nnx.Rngs) -> nnx.List:
  """BasicSR's ``Upsample``: one conv3x3(F -> r^2 F) per pixel-shuffle stage (``rdn.upsampler_stages``)."""
  return nnx.List([rdn._Conv(features, features * r * r, 3, dtype=dtype, rngs=rngs)
                   for r in rdn.upsampler_stages(scale)])


def upsample(convs: nnx.List, scale: int, h: jax.Array) -> jax.Array:
  for conv, r in zip(convs, rdn.upsampler_stages(scale)):
    h = rdn.pixel_shuffle(conv(h), r)
  return h


class ResidualBlockNoBN(nnx.Module):

  def __init__(self, features: int, res_scale: float, *, dtype, rngs: nnx.Rngs):
    self.conv1 = rdn._Conv(features, features, 3, dtype=dtype, rngs=rngs)
    self.conv2 = rdn._Conv(features, features, 3, dtype=dtype, rngs=rngs)
    self.res_scale = res_scale

  def __call__(self, x: jax.Array) -> jax.Array:
    return x + self.conv2(nnx.relu(self.conv1(x))) * self.res_scale


class EDSR(nnx.Module):
  """EDSR with ``num_blocks`` residual blocks of ``features`` channels."""

  def __init__(self, *, scale: int, num_blocks: int = 16, features: int = 64, channels: int = 3,
               res_scale: float = 1.0, dtype=jnp.float32, rngs: nnx.Rngs):
    self.scale = scale
    self.dtype = dtype
    self.channels = channels
    conv = lambda cin, cout: rdn._Conv(cin, cout, 3, dtype=dtype, rngs=rngs)
    self.conv_first = conv(channels, features)
    self.body = nnx.List([ResidualBlockNoBN(features, res_scale, dtype=dtype, rngs=rngs) for _ in range(num_blocks)])
    self.conv_after_body = conv(features, features)
    self.upsample = upsampler(features, scale, dtype=dtype, rngs=rngs)
    self.conv_last = conv(features, channels)

  def __call__(self, x: jax.Array) -> jax.Array:
    """Maps NHWC LR images in [0, 1] to NHWC SR images (float32, unclipped), ``scale`` times larger."""
    mean = mean_of(self.channels)
    h = self.conv_first(((x.astype(jnp.float32) - mean) * IMG_RANGE).astype(self.dtype))
    res = h
    for block in self.body:
      res = block(res)
    h = self.conv_after_body(res) + h
    out = self.conv_last(upsample(self.upsample, self.scale, h))
    return out.astype(jnp.float32) / IMG_RANGE + mean


def upsampler_macs(features: int, channels: int, scale: int) -> float:
  """Multiply-adds per LR pixel of the up-sampling convs and conv_last (they run at growing resolution)."""
  macs, res = 0.0, 1
  for r in rdn.upsampler_stages(scale):
    macs += 9 * features * features * r * r * res * res
    res *= r
  return macs + 9 * features * channels * scale * scale


def receptive_field_radius(num_blocks: int, scale: int) -> int:
  """Radius in LR pixels: conv_first, two convs per block, conv_after_body, and the up-sampler and last convs
  (at HR resolution they add less than one LR pixel each; counted as one to stay safe)."""
  return 2 + 2 * num_blocks + len(rdn.upsampler_stages(scale)) + 1


def flops_per_output_pixel(*, scale: int, num_blocks: int, features: int, channels: int = 3) -> float:
  """Analytic multiply-add FLOPs (2 per MAC) per output pixel, biases ignored."""
  f = features
  macs = 9 * channels * f + num_blocks * 2 * 9 * f * f + 9 * f * f + upsampler_macs(f, channels, scale)
  return 2.0 * macs / (scale * scale)
