"""idealo ISR's networks (``image-super-resolution``, Keras), as its published weights need them, in Flax NNX.

ISR's RDN and RRDN differ from the papers' (sr_jax's ``rdn`` and ``rrdbnet``):

* ``isr_rdn`` (ISR ``models/rdn.py``, weights psnr-small, psnr-large, noise-cancel): the paper's shallow
  features, residual dense blocks and global fusion (the RDB is ``rdn.ResidualDenseBlock``), then ISR's own
  up-sampler: UPN1 (5x5 conv to 64, ReLU), UPN2 (3x3 to 32, ReLU), UPN3 (3x3 to ``channels * scale^2``), a
  nearest-neighbour x``scale`` up-sampling of those channels (its ``upscaling='ups'``, the published weights'
  choice) and the 3x3 ``SR`` conv back to ``channels`` at full resolution.
* ``isr_rrdn`` (ISR ``models/rrdn.py``, weights gans): a 3x3 conv, ``num_blocks`` (T) residual-in-residual blocks
  of ``rdbs_per_block`` (D) dense blocks (``num_layers`` (C) 3x3 convs + ReLU, then a *3x3* fusion conv, added
  with weight beta = 0.2; the block's output scaled by beta and added to its input), a 3x3 conv and the long
  skip, one 3x3 conv to ``channels * scale^2``, a depth-to-space and the 3x3 ``SR`` conv.

TensorFlow's depth_to_space orders the channels (i, j, c) where PyTorch's pixel shuffle (``rdn.pixel_shuffle``)
orders them (c, i, j); the ISR importer permutes that conv's output channels, which is exact. Images are NHWC
floats in [0, 1] (ISR divides pixels by 255).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from sr_jax.models import rdn

BETA = 0.2  # ISR RRDN's residual scaling.
UPN_FEATURES = (64, 32)  # ISR RDN's fixed up-sampler widths (UPN1, UPN2).


def _upsample_nearest(x: jax.Array, r: int) -> jax.Array:
  return jnp.repeat(jnp.repeat(x, r, axis=1), r, axis=2)


class ISRRDN(nnx.Module):
  """ISR's RDN: D blocks of C layers, growth G, G0 features, ISR's nearest-neighbour up-sampler."""

  def __init__(self, *, scale: int, num_blocks: int, num_layers: int, growth: int, features: int, channels: int = 3,
               dtype=jnp.float32, rngs: nnx.Rngs):
    self.scale, self.dtype = scale, dtype
    conv = lambda cin, cout, k: rdn._Conv(cin, cout, k, dtype=dtype, rngs=rngs)
    self.sfe1 = conv(channels, features, 3)
    self.sfe2 = conv(features, features, 3)
    self.blocks = nnx.List([rdn.ResidualDenseBlock(features, growth, num_layers, dtype=dtype, rngs=rngs)
                            for _ in range(num_blocks)])
    self.gff1 = conv(num_blocks * features, features, 1)
    self.gff2 = conv(features, features, 3)
    self.upn1 = conv(features, UPN_FEATURES[0], 5)
    self.upn2 = conv(UPN_FEATURES[0], UPN_FEATURES[1], 3)
    self.upn3 = conv(UPN_FEATURES[1], channels * scale * scale, 3)
    self.out = conv(channels * scale * scale, channels, 3)

  def __call__(self, x: jax.Array) -> jax.Array:
    x = x.astype(self.dtype)
    f_1 = self.sfe1(x)
    h, outs = self.sfe2(f_1), []
    for block in self.blocks:
      h = block(h)
      outs.append(h)
    h = self.gff2(self.gff1(jnp.concatenate(outs, axis=-1))) + f_1
    h = self.upn3(nnx.relu(self.upn2(nnx.relu(self.upn1(h)))))
    return self.out(_upsample_nearest(h, self.scale)).astype(jnp.float32)


class _DenseBlock(nnx.Module):
  """ISR RRDN's dense block: C conv+ReLU layers, a 3x3 fusion conv (no residual of its own)."""

  def __init__(self, features: int, growth: int, num_layers: int, *, dtype, rngs: nnx.Rngs):
    self.convs = nnx.List([rdn._Conv(features + i * growth, growth, 3, dtype=dtype, rngs=rngs)
                           for i in range(num_layers)])
    self.lff = rdn._Conv(features + num_layers * growth, features, 3, dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    for conv in self.convs:
      x = jnp.concatenate([x, nnx.relu(conv(x))], axis=-1)
    return self.lff(x)


class _RRDB(nnx.Module):

  def __init__(self, features: int, growth: int, num_layers: int, rdbs: int, *, dtype, rngs: nnx.Rngs):
    self.rdbs = nnx.List([_DenseBlock(features, growth, num_layers, dtype=dtype, rngs=rngs) for _ in range(rdbs)])

  def __call__(self, x: jax.Array) -> jax.Array:
    h = x
    for rdb in self.rdbs:
      h = h + BETA * rdb(h)
    return x + BETA * h


class ISRRRDN(nnx.Module):
  """ISR's RRDN: T blocks of D dense blocks of C layers, growth G, G0 features, depth-to-space up-sampling."""

  def __init__(self, *, scale: int, num_blocks: int, rdbs_per_block: int, num_layers: int, growth: int,
               features: int, channels: int = 3, dtype=jnp.float32, rngs: nnx.Rngs):
    self.scale, self.dtype = scale, dtype
    conv = lambda cin, cout: rdn._Conv(cin, cout, 3, dtype=dtype, rngs=rngs)
    self.pre = conv(channels, features)
    self.blocks = nnx.List([_RRDB(features, growth, num_layers, rdbs_per_block, dtype=dtype, rngs=rngs)
                            for _ in range(num_blocks)])
    self.post = conv(features, features)
    self.up = conv(features, channels * scale * scale)
    self.out = conv(channels, channels)

  def __call__(self, x: jax.Array) -> jax.Array:
    pre = self.pre(x.astype(self.dtype))
    h = pre
    for block in self.blocks:
      h = block(h)
    h = self.post(h) + pre
    return self.out(rdn.pixel_shuffle(self.up(h), self.scale)).astype(jnp.float32)


def rdn_receptive_field(num_blocks: int, num_layers: int) -> int:
  """Radius in LR pixels: two shallow convs, C per block, GFF2, UPN1 (5x5: 2), UPN2, UPN3, then the SR conv at
  full resolution (one HR pixel, rounded up to one LR pixel)."""
  return 2 + num_blocks * num_layers + 1 + 2 + 1 + 1 + 1


def rrdn_receptive_field(num_blocks: int, rdbs_per_block: int, num_layers: int) -> int:
  """Radius in LR pixels: pre, (C + 1) 3x3 convs per dense block, post, the pre-shuffle conv, the SR conv."""
  return 1 + num_blocks * rdbs_per_block * (num_layers + 1) + 1 + 1 + 1


def _dense_macs(features: int, growth: int, num_layers: int) -> int:
  return sum(9 * (features + i * growth) * growth for i in range(num_layers))


def rdn_flops_per_output_pixel(*, scale: int, num_blocks: int, num_layers: int, growth: int, features: int,
                               channels: int = 3) -> float:
  """Analytic multiply-add FLOPs (2 per MAC) per output pixel, biases ignored."""
  f, c, s2 = features, channels, scale * scale
  block = _dense_macs(f, growth, num_layers) + (f + num_layers * growth) * f
  lr = (9 * c * f + 9 * f * f + num_blocks * block + num_blocks * f * f + 9 * f * f
        + 25 * f * UPN_FEATURES[0] + 9 * UPN_FEATURES[0] * UPN_FEATURES[1] + 9 * UPN_FEATURES[1] * c * s2)
  return 2.0 * (lr / s2 + 9 * c * s2 * c)


def rrdn_flops_per_output_pixel(*, scale: int, num_blocks: int, rdbs_per_block: int, num_layers: int, growth: int,
                                features: int, channels: int = 3) -> float:
  f, c, s2 = features, channels, scale * scale
  block = _dense_macs(f, growth, num_layers) + 9 * (f + num_layers * growth) * f
  lr = 9 * c * f + num_blocks * rdbs_per_block * block + 9 * f * f + 9 * f * c * s2
  return 2.0 * (lr / s2 + 9 * c * c)
