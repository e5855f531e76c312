"""HAT (Chen et al., CVPR 2023, "Activating More Pixels in Image Super-Resolution Transformer") in Flax NNX, as
the official ``hat/archs/hat_arch.py`` of XPixelGroup/HAT (same names; SwinIR's frame, ``models/swinir.py``).

* residual hybrid attention groups (RHAG): ``num_layers`` hybrid attention blocks (HAB) then an overlapping
  cross-attention block (OCAB), then a conv (``1conv``, or ``identity``) plus the group's input;
* HAB: a Swin layer (window attention, every second block on shifted windows) whose attention branch gets a
  channel-attention conv branch added, scaled by 0.01: conv3x3 (E -> E / ``compress_ratio``), GELU, conv3x3
  back, RCAN's channel attention with ``squeeze``;
* OCAB: queries from ``window_size``² windows, keys and values from overlapping windows of side
  ``window_size * (1 + overlap_ratio)`` (zero-padded at the border), its own relative-position bias, a
  projection and a residual, then the MLP;
* the classical reconstruction (conv to 64 + LeakyReLU, pixel-shuffle up-sampler, conv_last), DIV2K mean shift.

The network does not pad; HAT's model pads the input to window multiples (reflect) and crops the output, which
sr_jax's HAT does itself. HAT: 180 features, 6 x 6 blocks, window 16, compress 3, squeeze 30 (20.8M parameters
at x4); HAT-S: 144 features, compress 24, squeeze 24. Stochastic depth (``drop_path_rate``, the reference's 0.1)
drops a HAB's attention and MLP branches as in ``models/swinir.py`` (not the CAB branch, nor OCAB: as the
reference), only when the call is given per-sample keys.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from sr_jax.core.errors import require
from sr_jax.models import edsr, rcan, rdn, swinir

RESI_CONNECTIONS = ("1conv", "identity")
CONV_SCALE = 0.01  # The conv branch's weight in every published HAT (a constructor default, not in the weights).


def overlap_window(window: int, overlap_ratio: float) -> int:
  return int(window * overlap_ratio) + window


@functools.lru_cache(maxsize=None)
def relative_position_index_oca(window: int, overlap_ratio: float) -> np.ndarray:
  """(w², ow²) index into OCAB's ((w + ow - 1)², heads) table: the reference's ``calculate_rpi_oca``."""
  ow = overlap_window(window, overlap_ratio)
  grid = lambda n: np.stack(np.meshgrid(np.arange(n), np.arange(n), indexing="ij")).reshape(2, -1)
  rel = (grid(ow)[:, None, :] - grid(window)[:, :, None]).transpose(1, 2, 0) + (window - ow + 1)
  return (rel[:, :, 0] * (window + ow - 1) + rel[:, :, 1]).astype(np.int32)


class CAB(nnx.Module):
  """conv3x3 (E -> E / compress), GELU, conv3x3 back, channel attention."""

  def __init__(self, dim: int, compress_ratio: int, squeeze: int, *, dtype, rngs):
    self.conv1 = rdn._Conv(dim, dim // compress_ratio, 3, dtype=dtype, rngs=rngs)
    self.conv2 = rdn._Conv(dim // compress_ratio, dim, 3, dtype=dtype, rngs=rngs)
    self.attention = rcan.ChannelAttention(dim, squeeze, dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.attention(self.conv2(nnx.gelu(self.conv1(x), approximate=False)))


class HAB(swinir.SwinLayer):
  """A Swin layer with the CAB branch beside its attention."""

  def __init__(self, dim: int, heads: int, window: int, shift: int, mlp_ratio: float, compress_ratio: int,
               squeeze: int, *, drop_path: float = 0.0, dtype, rngs):
    super().__init__(dim, heads, window, shift, mlp_ratio, drop_path=drop_path, dtype=dtype, rngs=rngs)
    self.conv_block = CAB(dim, compress_ratio, squeeze, dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array, keys: jax.Array | None = None) -> jax.Array:
    y = self.norm1(x)
    attn = swinir.drop_path(self.attention(y), self.drop_path, swinir.layer_keys(keys, 0))
    x = x + attn + self.conv_block(y) * CONV_SCALE
    return self.mlp(x, keys)


def overlapping_windows(x: jax.Array, window: int, size: int) -> jax.Array:
  """(B, H, W, C) -> (B nW, size², C): windows of side ``size`` centred on the ``window`` grid, zero-padded at the
  border (PyTorch's ``nn.Unfold(size, stride=window, padding=(size - window) // 2)``), row-major."""
  b, h, w, c = x.shape
  p = (size - window) // 2
  x = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
  rows = (jnp.arange(h // window)[:, None] * window + jnp.arange(size)[None, :]).reshape(-1)
  cols = (jnp.arange(w // window)[:, None] * window + jnp.arange(size)[None, :]).reshape(-1)
  x = x[:, rows][:, :, cols].reshape(b, h // window, size, w // window, size, c)
  return x.transpose(0, 1, 3, 2, 4, 5).reshape(-1, size * size, c)


class OCAB(nnx.Module):

  def __init__(self, dim: int, window: int, overlap_ratio: float, heads: int, mlp_ratio: float, *, dtype, rngs):
    self.window, self.heads, self.dtype, self.overlap_ratio = window, heads, dtype, overlap_ratio
    self.size = overlap_window(window, overlap_ratio)
    self.norm1 = swinir.layer_norm(dim, dtype=dtype, rngs=rngs)
    self.qkv = swinir.linear(dim, 3 * dim, dtype=dtype, rngs=rngs)
    self.relative_position_bias_table = nnx.Param(
        swinir._TRUNC(rngs.params(), ((window + self.size - 1) ** 2, heads)))
    self.proj = swinir.linear(dim, dim, dtype=dtype, rngs=rngs)
    self.norm2 = swinir.layer_norm(dim, dtype=dtype, rngs=rngs)
    hidden = int(dim * mlp_ratio)
    self.fc1 = swinir.linear(dim, hidden, dtype=dtype, rngs=rngs)
    self.fc2 = swinir.linear(hidden, dim, dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    b, h, w, c = x.shape
    ws, d = self.window, c // self.heads
    q, k, v = jnp.split(self.qkv(self.norm1(x)), 3, axis=-1)
    q = swinir.window_partition(q, ws)
    kv = overlapping_windows(jnp.concatenate([k, v], axis=-1), ws, self.size)
    k, v = kv[..., :c], kv[..., c:]
    heads = lambda t: t.reshape(t.shape[0], t.shape[1], self.heads, d).transpose(0, 2, 1, 3)
    index = relative_position_index_oca(ws, self.overlap_ratio)
    bias = self.relative_position_bias_table[...][index.reshape(-1)].reshape(ws * ws, self.size ** 2, -1)
    attn = jnp.einsum("bhqd,bhkd->bhqk", heads(q) * d ** -0.5, heads(k), preferred_element_type=jnp.float32)
    attn = jax.nn.softmax(attn + bias.transpose(2, 0, 1)[None], axis=-1).astype(self.dtype)
    out = jnp.einsum("bhqk,bhkd->bqhd", attn, heads(v)).reshape(-1, ws * ws, c)
    x = self.proj(swinir.window_reverse(out, ws, b, h, w)) + x
    return x + self.fc2(nnx.gelu(self.fc1(self.norm2(x)), approximate=False))


class RHAG(nnx.Module):

  def __init__(self, dim: int, depth: int, heads: int, window: int, mlp_ratio: float, compress_ratio: int,
               squeeze: int, overlap_ratio: float, resi_connection: str, *, drop_paths=(), dtype, rngs):
    rates = list(drop_paths) or [0.0] * depth
    self.blocks = nnx.List([HAB(dim, heads, window, 0 if i % 2 == 0 else window // 2, mlp_ratio, compress_ratio,
                                squeeze, drop_path=rates[i], dtype=dtype, rngs=rngs) for i in range(depth)])
    self.overlap_attn = OCAB(dim, window, overlap_ratio, heads, mlp_ratio, dtype=dtype, rngs=rngs)
    if resi_connection not in RESI_CONNECTIONS:
      raise ValueError(f"HAT resi_connection must be one of {RESI_CONNECTIONS}, got {resi_connection!r}")
    self.conv = rdn._Conv(dim, dim, 3, dtype=dtype, rngs=rngs) if resi_connection == "1conv" else None

  def __call__(self, x: jax.Array, keys: jax.Array | None = None) -> jax.Array:
    h = x
    for i, block in enumerate(self.blocks):
      h = block(h, swinir.layer_keys(keys, i))
    h = self.overlap_attn(h)
    return (self.conv(h) if self.conv is not None else h) + x


class HAT(nnx.Module):
  """HAT with ``num_blocks`` RHAGs of ``num_layers`` HABs, width ``features``."""

  def __init__(self, *, scale: int, num_blocks: int = 6, num_layers: int = 6, features: int = 180,
               num_heads: int = 6, window_size: int = 16, mlp_ratio: float = 2.0, compress_ratio: int = 3,
               squeeze: int = 30, overlap_ratio: float = 0.5, resi_connection: str = "1conv", channels: int = 3,
               drop_path_rate: float = 0.0, dtype=jnp.float32, rngs):
    self.scale, self.window, self.dtype, self.channels = scale, window_size, dtype, channels
    conv = lambda cin, cout: rdn._Conv(cin, cout, 3, dtype=dtype, rngs=rngs)
    e = features
    self.conv_first = conv(channels, e)
    self.patch_norm = swinir.layer_norm(e, dtype=dtype, rngs=rngs)
    rates = swinir.drop_path_rates(drop_path_rate, num_blocks * num_layers).reshape(num_blocks, num_layers)
    self.layers = nnx.List([RHAG(e, num_layers, num_heads, window_size, mlp_ratio, compress_ratio, squeeze,
                                 overlap_ratio, resi_connection, drop_paths=rates[i], dtype=dtype, rngs=rngs)
                            for i in range(num_blocks)])
    self.norm = swinir.layer_norm(e, dtype=dtype, rngs=rngs)
    self.conv_after_body = conv(e, e) if resi_connection == "1conv" else None
    self.conv_before_upsample = conv(e, swinir.NUM_FEAT)
    self.upsample = edsr.upsampler(swinir.NUM_FEAT, scale, dtype=dtype, rngs=rngs)
    self.conv_last = conv(swinir.NUM_FEAT, channels)

  def __call__(self, x: jax.Array, keys: jax.Array | None = None) -> jax.Array:
    """Maps NHWC LR images in [0, 1] to NHWC SR images (float32, unclipped), ``scale`` times larger; ``keys``
    (one PRNG key per image) switch stochastic depth on (training)."""
    h, w = x.shape[1:3]
    mean = edsr.mean_of(self.channels) if self.channels == 3 else jnp.zeros((1, 1, 1, 1), jnp.float32)
    x = swinir.pad_to_multiple(x.astype(jnp.float32) - mean, self.window).astype(self.dtype)
    first = self.conv_first(x)
    feats = self.patch_norm(first)
    for i, layer in enumerate(self.layers):
      feats = layer(feats, swinir.layer_keys(keys, i))
    feats = self.norm(feats)
    feats = (self.conv_after_body(feats) if self.conv_after_body is not None else feats) + first
    feats = nnx.leaky_relu(self.conv_before_upsample(feats), 0.01)
    out = self.conv_last(edsr.upsample(self.upsample, self.scale, feats)).astype(jnp.float32) + mean
    return out[:, :h * self.scale, :w * self.scale]


def flops_per_output_pixel(*, scale: int, num_blocks: int, num_layers: int, features: int, window_size: int,
                           mlp_ratio: float, compress_ratio: int, overlap_ratio: float, resi_connection: str,
                           channels: int = 3) -> float:
  """Analytic multiply-add FLOPs (2 per MAC) per output pixel (linear layers, attention products, convs)."""
  e, n = features, window_size ** 2
  mlp = 2 * e * e * mlp_ratio
  hab = 4 * e * e + 2 * n * e + mlp + 2 * 9 * e * (e // compress_ratio)
  ocab = 4 * e * e + 2 * overlap_window(window_size, overlap_ratio) ** 2 * e + mlp
  conv = 9 * e * e if resi_connection == "1conv" else 0
  body = num_blocks * (num_layers * hab + ocab + conv) + conv
  macs = 9 * channels * e + body + swinir.reconstruction_macs(e, channels, scale, "pixelshuffle")
  return 2.0 * macs / (scale * scale)


def receptive_field_radius(num_blocks: int, num_layers: int, window_size: int, overlap_ratio: float) -> int:
  """Radius in LR pixels: per HAB a window (and its CAB's two convs), per OCAB its overlapping window."""
  ow = overlap_window(window_size, overlap_ratio)
  return num_blocks * (num_layers * (window_size - 1 + 2) + ow + 1) + 5


def check_config(m) -> None:
  """config.model's rules of HAT: SwinIR's window rules, and the conv branch's and channel attention's reductions
  dividing the features."""
  swinir.check_config(m)
  for key in ("compress_ratio", "squeeze"):
    require(int(m[key]) >= 1 and m.features % m[key] == 0, f"model.{key}", m[key],
            f"a divisor of model.features={m.features}")
