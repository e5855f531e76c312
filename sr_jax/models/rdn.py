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


# How convolutions are computed (the parameters are the same HWIO kernels either way, so checkpoints move freely):
# 'xla': lax.conv (cuDNN on GPU, TPU convolutions); 'im2col': 3x3 neighbourhoods gathered into the channel axis
# and one matmul per conv, which XLA:CPU runs near its matmul peak, backward pass included. In dense blocks
# 'im2col' also gathers each layer's output once and reuses it for every later layer. 'auto': im2col on CPU.
CONV_IMPLS = ("auto", "xla", "im2col")


def resolve_conv_impl(impl: str) -> str:
  if impl not in CONV_IMPLS:
    raise ValueError(f"conv_impl must be one of {CONV_IMPLS}, got {impl!r}")
  if impl == "auto":
    return "im2col" if jax.default_backend() == "cpu" else "xla"
  return impl


def im2col(x: jax.Array, k: int) -> jax.Array:
  """NHWC -> NHW(k*k*C): the k x k 'SAME' neighbourhood of every pixel, ordered (dy, dx, c) like HWIO kernels."""
  if k == 1:
    return x
  p = k // 2
  h, w = x.shape[1], x.shape[2]
  xp = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
  return jnp.concatenate([xp[:, i:i + h, j:j + w, :] for i in range(k) for j in range(k)], axis=-1)


class _Conv(nnx.Conv):

  def __init__(self, cin: int, cout: int, k: int, *, dtype, impl: str = "xla", rngs: nnx.Rngs):
    super().__init__(cin, cout, (k, k), padding="SAME", kernel_init=_TORCH_KERNEL_INIT, dtype=dtype,
                     param_dtype=jnp.float32, rngs=rngs)
    self.impl = impl

  def __call__(self, x: jax.Array) -> jax.Array:
    if self.impl == "xla":
      return super().__call__(x)
    k = self.kernel_size[0]
    return self.from_columns(im2col(x.astype(self.dtype), k))

  def from_columns(self, cols: jax.Array, kernel_rows: jax.Array | None = None) -> jax.Array:
    """Applies the conv to im2col columns (rows of the kernel in the columns' order)."""
    kernel = self.kernel[...] if kernel_rows is None else kernel_rows
    kernel = kernel.reshape(-1, kernel.shape[-1]).astype(self.dtype)
    return jnp.dot(cols, kernel) + self.bias[...].astype(self.dtype)


class ResidualDenseBlock(nnx.Module):

  def __init__(self, g0: int, g: int, c: int, *, dtype, impl: str = "xla", rngs: nnx.Rngs):
    self.convs = nnx.List([_Conv(g0 + i * g, g, 3, dtype=dtype, impl=impl, rngs=rngs) for i in range(c)])
    self.lff = _Conv(g0 + c * g, g0, 1, dtype=dtype, impl=impl, rngs=rngs)
    self.impl = impl

  def __call__(self, x: jax.Array) -> jax.Array:
    if self.impl == "im2col":
      return self._dense_im2col(x)
    feats = x
    for conv in self.convs:
      feats = jnp.concatenate([feats, nnx.relu(conv(feats))], axis=-1)
    return x + self.lff(feats)

  def _dense_im2col(self, x: jax.Array) -> jax.Array:
    """Layer i's input columns are the concatenated columns of x, out_1 ... out_{i-1}, each gathered once;
    the kernel rows are reordered from (dy, dx, [x, out_1, ...]) to ([x, out_1, ...], dy, dx) to match."""
    x = x.astype(self.convs[0].dtype)
    chunks, cols = [x], [im2col(x, 3)]
    for conv in self.convs:
      kernel = conv.kernel[...]
      bounds = [0]
      for c in chunks:
        bounds.append(bounds[-1] + c.shape[-1])
      rows = jnp.concatenate([kernel[:, :, a:b, :].reshape(-1, kernel.shape[-1])
                              for a, b in zip(bounds[:-1], bounds[1:])], axis=0)
      out = nnx.relu(conv.from_columns(jnp.concatenate(cols, axis=-1), rows))
      chunks.append(out)
      cols.append(im2col(out, 3))
    return x + self.lff(jnp.concatenate(chunks, axis=-1))


class RDN(nnx.Module):
  """RDN with D blocks of C layers, growth G, G0 features, for a fixed up-scaling factor."""

  def __init__(self, *, scale: int, num_blocks: int = 16, num_layers: int = 8, growth: int = 64,
               features: int = 64, channels: int = 3, dtype=jnp.float32, conv_impl: str = "xla",
               rngs: nnx.Rngs):
    self.scale = scale
    self.dtype = dtype
    impl = resolve_conv_impl(conv_impl)
    g0, g = features, growth
    conv = lambda cin, cout, k: _Conv(cin, cout, k, dtype=dtype, impl=impl, rngs=rngs)
    self.sfe1 = conv(channels, g0, 3)
    self.sfe2 = conv(g0, g0, 3)
    self.blocks = nnx.List(
        [ResidualDenseBlock(g0, g, num_layers, dtype=dtype, impl=impl, rngs=rngs) for _ in range(num_blocks)])
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
    f_1 = self.sfe1(x)
    h = self.sfe2(f_1)
    outs = []
    for block in self.blocks:
      h = block(h)
      outs.append(h)
    h = self.gff2(self.gff1(jnp.concatenate(outs, axis=-1))) + f_1
    for conv, r in zip(self.up, self.up_factors):
      h = pixel_shuffle(conv(h), r)
    return self.out(h).astype(jnp.float32)


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


def count_params(model: nnx.Module) -> int:
  return sum(int(x.size) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
