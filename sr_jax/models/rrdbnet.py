"""RRDBNet (ESRGAN, Wang et al. ECCVW 2018; Real-ESRGAN's generator) in Flax NNX, as BasicSR's rrdbnet_arch.py.

* conv_first (3x3) after a pixel-unshuffle of the input for x2 (factor 2) and x1 (factor 4), as Real-ESRGAN's
  x2plus does, so the body always runs at a quarter of the output resolution;
* ``num_blocks`` RRDBs: three residual dense blocks (five 3x3 convs, LeakyReLU 0.2 after the first four, each
  conv seeing the input and all earlier outputs, ``growth`` channels each, the fifth back to ``features``),
  each scaled by 0.2 and added to its input; the RRDB's output scaled by 0.2 and added to its input;
* conv_body, a long skip from conv_first; two nearest-neighbour x2 up-sampling stages each followed by a 3x3
  conv and LeakyReLU; conv_hr + LeakyReLU; conv_last.

Images are NHWC floats in [0, 1]. For x2/x1 an input whose sides are not multiples of the unshuffle factor is
reflect-padded and the output cropped (what Real-ESRGAN's inference does), so any size works everywhere.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from sr_jax.models import rdn

SCALES = (1, 2, 4)


def pixel_unshuffle(x: jax.Array, r: int) -> jax.Array:
  """PyTorch ``F.pixel_unshuffle``: pixel (h*r + i, w*r + j) of channel c goes to channel c*r*r + i*r + j."""
  n, h, w, c = x.shape
  x = x.reshape(n, h // r, r, w // r, r, c)
  return x.transpose(0, 1, 3, 5, 2, 4).reshape(n, h // r, w // r, c * r * r)


def unshuffle_factor(scale: int) -> int:
  if scale not in SCALES:
    raise ValueError(f"RRDBNet supports scale 1, 2 or 4, got {scale}")
  return 4 // scale


def _lrelu(x: jax.Array) -> jax.Array:
  return nnx.leaky_relu(x, 0.2)


def _upsample_nearest(x: jax.Array) -> jax.Array:
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


class ResidualDenseBlock(nnx.Module):

  def __init__(self, features: int, growth: int, *, dtype, rngs: nnx.Rngs):
    conv = lambda cin, cout: rdn._Conv(cin, cout, 3, dtype=dtype, rngs=rngs)
    self.convs = nnx.List([conv(features + i * growth, growth) for i in range(4)]
                          + [conv(features + 4 * growth, features)])

  def __call__(self, x: jax.Array) -> jax.Array:
    feats = x
    for conv in self.convs[:-1]:
      feats = jnp.concatenate([feats, _lrelu(conv(feats))], axis=-1)
    return self.convs[-1](feats) * 0.2 + x


class RRDB(nnx.Module):

  def __init__(self, features: int, growth: int, *, dtype, rngs: nnx.Rngs):
    self.rdbs = nnx.List([ResidualDenseBlock(features, growth, dtype=dtype, rngs=rngs) for _ in range(3)])

  def __call__(self, x: jax.Array) -> jax.Array:
    out = x
    for rdb in self.rdbs:
      out = rdb(out)
    return out * 0.2 + x


class RRDBNet(nnx.Module):
  """RRDBNet with ``num_blocks`` RRDBs of ``features`` channels and ``growth`` channels per dense layer."""

  def __init__(self, *, scale: int, num_blocks: int = 23, growth: int = 32, features: int = 64, channels: int = 3,
               dtype=jnp.float32, rngs: nnx.Rngs):
    self.scale = scale
    self.dtype = dtype
    self.unshuffle = unshuffle_factor(scale)
    conv = lambda cin, cout: rdn._Conv(cin, cout, 3, dtype=dtype, rngs=rngs)
    self.conv_first = conv(channels * self.unshuffle ** 2, features)
    self.body = nnx.List([RRDB(features, growth, dtype=dtype, rngs=rngs) for _ in range(num_blocks)])
    self.conv_body = conv(features, features)
    self.conv_up1 = conv(features, features)
    self.conv_up2 = conv(features, features)
    self.conv_hr = conv(features, features)
    self.conv_last = conv(features, channels)

  def __call__(self, x: jax.Array) -> jax.Array:
    """Maps NHWC LR images in [0, 1] to NHWC SR images (float32, unclipped), ``scale`` times larger."""
    x = x.astype(self.dtype)
    h, w = x.shape[1:3]
    r = self.unshuffle
    if r > 1:  # Reflect-pad by r - 1 (a constant, so symbolic sizes export too), keep what a multiple of r needs.
      x = jnp.pad(x, ((0, 0), (0, r - 1), (0, r - 1), (0, 0)), mode="reflect")
      x = pixel_unshuffle(x[:, :h + (-h % r), :w + (-w % r)], r)
    feat = self.conv_first(x)
    body = feat
    for block in self.body:
      body = block(body)
    feat = feat + self.conv_body(body)
    feat = _lrelu(self.conv_up1(_upsample_nearest(feat)))
    feat = _lrelu(self.conv_up2(_upsample_nearest(feat)))
    out = self.conv_last(_lrelu(self.conv_hr(feat)))
    return out[:, :h * self.scale, :w * self.scale].astype(jnp.float32)


def receptive_field_radius(num_blocks: int, scale: int) -> int:
  """Radius in input (LR) pixels: conv_first, 15 convs per RRDB and conv_body at the body's resolution (one body
  pixel is ``4 // scale`` input pixels wide), then the up-sampling convs at 2x and 4x the body's (rounded up)."""
  r = unshuffle_factor(scale)
  return int(math.ceil(r * (2 + 15 * num_blocks) + r / 2 + 3 * r / 4)) + r


def flops_per_output_pixel(*, scale: int, num_blocks: int, growth: int, features: int, channels: int = 3) -> float:
  """Analytic multiply-add FLOPs (2 per MAC) per output pixel, biases ignored."""
  r = unshuffle_factor(scale)
  f, g = features, growth
  rdb = sum(9 * (f + i * g) * g for i in range(4)) + 9 * (f + 4 * g) * f
  body_macs = 9 * channels * r * r * f + num_blocks * 3 * rdb + 9 * f * f  # Per body pixel.
  up_macs = 9 * f * f * 4 + 9 * f * f * 16 + 9 * f * f * 16 + 9 * f * channels * 16  # Per body pixel, x2 and x4.
  return 2.0 * (body_macs + up_macs) / 16  # A body pixel is 4x4 output pixels.
