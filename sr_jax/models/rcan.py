"""RCAN (Zhang et al., ECCV 2018) in Flax NNX, as BasicSR's ``archs/rcan_arch.py`` and EDSR-PyTorch's / the
authors' ``model/rcan.py``.

* EDSR's frame (``models/edsr.py``): mean shift and [0, 255] pixels, conv_first, a body with a long skip,
  conv_after_body, the pixel-shuffle up-sampler, conv_last;
* the body: ``num_groups`` residual groups, each ``num_blocks`` residual channel-attention blocks (RCAB:
  conv3x3, ReLU, conv3x3, channel attention, scaled by ``res_scale``, plus the input) then a conv3x3, plus the
  group's input;
* channel attention: the global average of each channel, conv1x1(F -> F / ``squeeze``), ReLU, conv1x1 back,
  sigmoid; the block's features multiplied by it.

The paper's network: 10 groups of 20 RCABs, 64 features, squeeze 16 (15.6M parameters at x4). Images are NHWC
floats in [0, 1]. The attention averages over the whole input, so a tiled upscale is not exactly the whole one
(docs/models.md gives the measured difference).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from sr_jax.core.errors import require
from sr_jax.models import edsr, rdn


class ChannelAttention(nnx.Module):

  def __init__(self, features: int, squeeze: int, *, dtype, rngs: nnx.Rngs):
    self.down = rdn._Conv(features, features // squeeze, 1, dtype=dtype, rngs=rngs)
    self.up = rdn._Conv(features // squeeze, features, 1, dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    y = jnp.mean(x.astype(jnp.float32), axis=(1, 2), keepdims=True).astype(x.dtype)
    return x * nnx.sigmoid(self.up(nnx.relu(self.down(y))))


class RCAB(nnx.Module):

  def __init__(self, features: int, squeeze: int, res_scale: float, *, dtype, rngs: nnx.Rngs):
    self.conv1 = rdn._Conv(features, features, 3, dtype=dtype, rngs=rngs)
    self.conv2 = rdn._Conv(features, features, 3, dtype=dtype, rngs=rngs)
    self.attention = ChannelAttention(features, squeeze, dtype=dtype, rngs=rngs)
    self.res_scale = res_scale

  def __call__(self, x: jax.Array) -> jax.Array:
    return x + self.attention(self.conv2(nnx.relu(self.conv1(x)))) * self.res_scale


class ResidualGroup(nnx.Module):

  def __init__(self, features: int, num_blocks: int, squeeze: int, res_scale: float, *, dtype, rngs: nnx.Rngs):
    self.blocks = nnx.List([RCAB(features, squeeze, res_scale, dtype=dtype, rngs=rngs) for _ in range(num_blocks)])
    self.conv = rdn._Conv(features, features, 3, dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    h = x
    for block in self.blocks:
      h = block(h)
    return x + self.conv(h)


class RCAN(nnx.Module):
  """RCAN with ``num_groups`` residual groups of ``num_blocks`` RCABs of ``features`` channels."""

  def __init__(self, *, scale: int, num_groups: int = 10, num_blocks: int = 20, features: int = 64,
               channels: int = 3, squeeze: int = 16, res_scale: float = 1.0, dtype=jnp.float32, rngs: nnx.Rngs):
    if features % squeeze:
      raise ValueError(f"RCAN features ({features}) must be a multiple of the squeeze factor ({squeeze})")
    self.scale = scale
    self.dtype = dtype
    self.channels = channels
    conv = lambda cin, cout: rdn._Conv(cin, cout, 3, dtype=dtype, rngs=rngs)
    self.conv_first = conv(channels, features)
    self.body = nnx.List([ResidualGroup(features, num_blocks, squeeze, res_scale, dtype=dtype, rngs=rngs)
                          for _ in range(num_groups)])
    self.conv_after_body = conv(features, features)
    self.upsample = edsr.upsampler(features, scale, dtype=dtype, rngs=rngs)
    self.conv_last = conv(features, channels)

  def __call__(self, x: jax.Array) -> jax.Array:
    """Maps NHWC LR images in [0, 1] to NHWC SR images (float32, unclipped), ``scale`` times larger."""
    mean = edsr.mean_of(self.channels)
    h = self.conv_first(((x.astype(jnp.float32) - mean) * edsr.IMG_RANGE).astype(self.dtype))
    res = h
    for group in self.body:
      res = group(res)
    h = self.conv_after_body(res) + h
    out = self.conv_last(edsr.upsample(self.upsample, self.scale, h))
    return out.astype(jnp.float32) / edsr.IMG_RANGE + mean


def receptive_field_radius(num_groups: int, num_blocks: int, scale: int) -> int:
  """Radius in LR pixels of the convolutions (2 per RCAB, 1 per group, conv_first, conv_after_body, the
  up-sampler's); the channel attention's global average reaches further (see the module docstring)."""
  return 2 + num_groups * (2 * num_blocks + 1) + len(rdn.upsampler_stages(scale)) + 1


def flops_per_output_pixel(*, scale: int, num_groups: int, num_blocks: int, features: int, channels: int = 3,
                           squeeze: int = 16) -> float:
  """Analytic multiply-add FLOPs (2 per MAC) per output pixel, biases and the attention's pooled 1x1 convs
  (once per image, not per pixel) ignored."""
  del squeeze
  f = features
  body = num_groups * (num_blocks * 2 * 9 * f * f + 9 * f * f)
  macs = 9 * channels * f + body + 9 * f * f + edsr.upsampler_macs(f, channels, scale)
  return 2.0 * macs / (scale * scale)


def check_config(m) -> None:
  """config.model's rule of RCAN: the channel attention squeezes features / squeeze channels."""
  require(m.features % m.squeeze == 0, "model.squeeze", m.squeeze,
          f"a divisor of model.features={m.features} (channel attention squeezes features / squeeze)")
