"""Residual Dense Network (Zhang et al., CVPR 2018) in Flax NNX.

Follows the paper and the authors' PyTorch code (EDSR-PyTorch ``model/rdn.py``) layer for layer:

* shallow features: conv3x3(C_in -> G0) = F_-1, conv3x3(G0 -> G0) = F_0;
* D residual dense blocks of C conv3x3+ReLU layers (layer c sees G0 + c*G channels, emits G), local feature
  fusion conv1x1(G0 + C*G -> G0) and a local residual;
* global feature fusion conv1x1(D*G0 -> G0) -> conv3x3(G0 -> G0), global residual with F_-1;
* up-sampler conv3x3(G0 -> G*s^2) + pixel shuffle for x2/x3, two x2 stages for x4, and conv3x3(G -> C_out).

Images are NHWC floats in [0, 1]. Convolutions are initialised like PyTorch's default (uniform, fan-in/3
variance), which is what the authors trained from. Parameters are float32; ``dtype`` sets the compute dtype
(bfloat16 for mixed precision).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

# PyTorch's default Conv2d init: kaiming_uniform(a=sqrt(5)) == U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
_TORCH_KERNEL_INIT = nnx.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def pixel_shuffle(x: jax.Array, r: int) -> jax.Array:
  """PyTorch ``nn.PixelShuffle``: channel ``c*r*r + i*r + j`` goes to pixel (h*r + i, w*r + j), channel c."""
  n, h, w, crr = x.shape
  c = crr // (r * r)
  x = x.reshape(n, h, w, c, r, r)
  x = x.transpose(0, 1, 4, 2, 5, 3)
  return x.reshape(n, h * r, w * r, c)


def upsampler_stages(scale: int) -> tuple[int, ...]:
  """Pixel-shuffle factors of the up-sampler: (2,), (3,) or (2, 2)."""
  if scale in (2, 3):
    return (scale,)
  if scale == 4:
    return (2, 2)
  raise ValueError(f"RDN supports scale 2, 3 or 4, got {scale}")


# How convolutions run (the parameters are the same HWIO kernels either way, so checkpoints move freely):
# 'xla': lax.conv on the NHWC batch (cuDNN on GPU). 'wide': the batch is laid side by side along the width,
# one zero column between images, and every conv output is re-zeroed on those columns, so each image still
# sees 'SAME' zero padding and the result equals 'xla' exactly. It paid on CPU when XLA ran convolutions itself
# faster on one wide image than on a batch of narrow ones; with jaxlib 0.10.2 and core/xla_flags.py's flag
# 'xla' is faster (the quickstart's step 0.10 vs 0.23 s, the paper RDN's 6.0 vs 10.6 s: benchmarks.md).
# 'auto': 'xla' everywhere.
CONV_IMPLS = ("auto", "xla", "wide")


def resolve_conv_impl(impl: str) -> str:
  if impl not in CONV_IMPLS:
    raise ValueError(f"conv_impl must be one of {CONV_IMPLS}, got {impl!r}")
  if impl == "auto":
    return "xla"
  return impl


def fold_batch(x: jax.Array) -> jax.Array:
  """(B, H, W, C) -> (1, H, B*(W+1), C): images side by side, each followed by a zero column."""
  b, h, w, c = x.shape
  x = jnp.pad(x, ((0, 0), (0, 0), (0, 1), (0, 0)))
  return x.transpose(1, 0, 2, 3).reshape(1, h, b * (w + 1), c)


def unfold_batch(x: jax.Array, batch: int, width: int) -> jax.Array:
  """Inverse of fold_batch for a layout scaled by r: (1, rH, B*(W+1)*r, C) -> (B, rH, W*r, C)."""
  _, h, total, c = x.shape
  r = total // (batch * (width + 1))
  return x.reshape(h, batch, (width + 1) * r, c).transpose(1, 0, 2, 3)[:, :, :width * r]


def fold_mask(batch: int, width: int, r: int, dtype) -> jax.Array:
  """(1, 1, B*(W+1)*r, 1): 1 on image columns, 0 on the separators of a folded layout scaled by r."""
  cols = jnp.arange(batch * (width + 1) * r) % ((width + 1) * r)
  return (cols < width * r).astype(dtype)[None, None, :, None]


class _Conv(nnx.Conv):

  def __init__(self, cin: int, cout: int, k: int, *, dtype, rngs: nnx.Rngs, kernel_init=_TORCH_KERNEL_INIT):
    super().__init__(cin, cout, (k, k), padding="SAME", kernel_init=kernel_init, dtype=dtype,
                     param_dtype=jnp.float32, rngs=rngs)

  def __call__(self, x: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    y = super().__call__(x)
    return y if mask is None else y * mask


class ResidualDenseBlock(nnx.Module):

  def __init__(self, g0: int, g: int, c: int, *, dtype, rngs: nnx.Rngs):
    self.convs = nnx.List([_Conv(g0 + i * g, g, 3, dtype=dtype, rngs=rngs) for i in range(c)])
    self.lff = _Conv(g0 + c * g, g0, 1, dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    feats = x
    for conv in self.convs:
      feats = jnp.concatenate([feats, nnx.relu(conv(feats, mask))], axis=-1)
    return x + self.lff(feats, mask)


class RDN(nnx.Module):
  """RDN with D blocks of C layers, growth G, G0 features, for a fixed up-scaling factor."""

  def __init__(self, *, scale: int, num_blocks: int = 16, num_layers: int = 8, growth: int = 64,
               features: int = 64, channels: int = 3, dtype=jnp.float32, conv_impl: str = "xla",
               rngs: nnx.Rngs):
    self.scale = scale
    self.dtype = dtype
    self.conv_impl = resolve_conv_impl(conv_impl)
    g0, g = features, growth
    conv = lambda cin, cout, k: _Conv(cin, cout, k, dtype=dtype, rngs=rngs)
    self.sfe1 = conv(channels, g0, 3)
    self.sfe2 = conv(g0, g0, 3)
    self.blocks = nnx.List(
        [ResidualDenseBlock(g0, g, num_layers, dtype=dtype, rngs=rngs) for _ in range(num_blocks)])
    self.gff1 = conv(num_blocks * g0, g0, 1)
    self.gff2 = conv(g0, g0, 3)
    self.up_factors = upsampler_stages(scale)
    ups, cin = [], g0
    for r in self.up_factors:
      ups.append(conv(cin, g * r * r, 3))
      cin = g
    self.up = nnx.List(ups)
    self.out = conv(g, channels, 3)

  def __call__(self, x: jax.Array) -> jax.Array:
    """Maps NHWC LR images in [0, 1] to NHWC SR images (float32, unclipped)."""
    x = x.astype(self.dtype)
    batch, width = x.shape[0], x.shape[2]
    wide = self.conv_impl == "wide" and batch > 1
    mask = (lambda r: fold_mask(batch, width, r, self.dtype)) if wide else (lambda r: None)
    if wide:
      x = fold_batch(x)
    f_1 = self.sfe1(x, mask(1))
    h = self.sfe2(f_1, mask(1))
    outs = []
    for block in self.blocks:
      h = block(h, mask(1))
      outs.append(h)
    h = self.gff2(self.gff1(jnp.concatenate(outs, axis=-1), mask(1)), mask(1)) + f_1
    r_total = 1
    for conv, r in zip(self.up, self.up_factors):
      h = pixel_shuffle(conv(h, mask(r_total)), r)
      r_total *= r
    h = self.out(h)
    if wide:
      h = unfold_batch(h, batch, width)
    return h.astype(jnp.float32)


def receptive_field_radius(num_blocks: int, num_layers: int, scale: int) -> int:
  """Radius in LR pixels beyond which an input pixel cannot affect an output pixel.

  Each 3x3 conv adds 1: two shallow convs, C per block, one after global fusion, and the up-sampler/output
  convs (which act at HR resolution, so they add less than 1 LR pixel each; counted as 1 to stay safe).
  """
  return 2 + num_blocks * num_layers + 1 + len(upsampler_stages(scale)) + 1


def flops_per_output_pixel(*, scale: int, num_blocks: int, num_layers: int, growth: int, features: int,
                           channels: int = 3) -> float:
  """Analytic multiply-add FLOPs (2 per MAC) per HR output pixel, biases ignored."""
  g0, g = features, growth
  lr_macs = 9 * channels * g0 + 9 * g0 * g0  # shallow features
  lr_macs += num_blocks * (sum(9 * (g0 + i * g) * g for i in range(num_layers)) + (g0 + num_layers * g) * g0)
  lr_macs += num_blocks * g0 * g0 + 9 * g0 * g0  # global fusion
  macs, cin, res = lr_macs, g0, 1  # MACs per LR pixel; the up-sampler runs at growing resolution.
  for r in upsampler_stages(scale):
    macs += 9 * cin * g * r * r * res * res
    res *= r
    cin = g
  macs += 9 * g * channels * scale * scale
  return 2.0 * macs / (scale * scale)
