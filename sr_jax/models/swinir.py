"""SwinIR (Liang et al., ICCVW 2021) in Flax NNX, as BasicSR's ``archs/swinir_arch.py`` and the SwinIR
repository's ``models/network_swinir.py`` (the same names).

* the DIV2K mean subtracted (zero for gray), conv_first (3x3, C -> E);
* ``num_blocks`` residual Swin transformer blocks (RSTB), each ``num_layers`` Swin layers then a conv (``1conv``
  3x3, or ``3conv``: 3x3 to E/4, LeakyReLU 0.2, 1x1, LeakyReLU, 3x3 back) plus the RSTB's input; a Swin layer is
  LayerNorm, multi-head self-attention inside ``window_size``² windows (every second layer on windows shifted by
  half a window, with the mask that keeps the wrapped-around regions apart) with a learned relative-position
  bias, a residual, LayerNorm, an MLP (E -> ``mlp_ratio`` E, exact GELU, back) and a residual;
* LayerNorm after the body (and after the patch embedding), conv_after_body plus a long skip from conv_first;
* the reconstruction (``upsampler``): ``pixelshuffle`` (classical: conv 3x3 to 64 + LeakyReLU 0.01, BasicSR's
  pixel-shuffle up-sampler, conv_last), ``pixelshuffledirect`` (lightweight: one conv to C s² + shuffle) or
  ``nearest+conv`` (real-world, x4: two nearest x2 + conv + LeakyReLU 0.2 stages, conv_hr, conv_last).

Images are NHWC floats in [0, 1]; the input is reflect-padded to window multiples and the output cropped (what
SwinIR's and BasicSR's testing do), so any size works. Stochastic depth (``drop_path_rate``, the references' 0.1
when they train): layer i of L drops its attention and MLP branches per sample with probability
rate * i / (L - 1) and scales the kept ones by 1 / (1 - that), as BasicSR's ``drop_path``; it acts only when
the call is given per-sample keys (the train step's), so inference and exports are unchanged. Not modelled:
absolute position embeddings (off in every published model), and the reference's window shrinking for inputs
smaller than a window at construction (``img_size`` is not a parameter here: the shift is always half a window).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from sr_jax.core.errors import require
from sr_jax.models import edsr, rdn

UPSAMPLERS = ("pixelshuffle", "pixelshuffledirect", "nearest+conv")
RESI_CONNECTIONS = ("1conv", "3conv")
NUM_FEAT = 64  # The reconstruction's width in the references (not a constructor argument there).
_TRUNC = nnx.initializers.truncated_normal(0.02)  # Init only: timm's trunc_normal_(std=.02) cuts at +-2, not 2 std.


def linear(cin: int, cout: int, *, dtype, rngs, use_bias: bool = True) -> nnx.Linear:
  return nnx.Linear(cin, cout, use_bias=use_bias, kernel_init=_TRUNC, dtype=dtype, param_dtype=jnp.float32,
                    rngs=rngs)


def layer_norm(dim: int, *, dtype, rngs) -> nnx.LayerNorm:
  return nnx.LayerNorm(dim, epsilon=1e-5, dtype=dtype, param_dtype=jnp.float32, rngs=rngs)  # PyTorch's eps.


@functools.lru_cache(maxsize=None)
def relative_position_index(window: int) -> np.ndarray:
  """(w², w²) index into the ((2w - 1)², heads) bias table: the references' ``relative_position_index``."""
  coords = np.stack(np.meshgrid(np.arange(window), np.arange(window), indexing="ij")).reshape(2, -1)
  rel = (coords[:, :, None] - coords[:, None, :]).transpose(1, 2, 0) + (window - 1)
  return (rel[:, :, 0] * (2 * window - 1) + rel[:, :, 1]).astype(np.int32)


def layer_keys(keys: jax.Array | None, i: int) -> jax.Array | None:
  """Per-sample keys (B,) for sub-layer ``i`` (None stays None: no stochastic depth)."""
  return None if keys is None else jax.vmap(jax.random.fold_in, (0, None))(keys, i)


def drop_path(x: jax.Array, rate: float, keys: jax.Array | None) -> jax.Array:
  """BasicSR's ``drop_path`` in training: each sample's branch ``x`` zeroed with probability ``rate`` (sample b's
  draw from ``keys[b]``), the kept ones divided by 1 - rate; ``x`` itself without keys or at rate 0."""
  if keys is None or rate == 0.0:
    return x
  keep = 1.0 - rate
  mask = jnp.floor(keep + jax.vmap(lambda k: jax.random.uniform(k, ()))(keys))
  return x / keep * mask.reshape((-1,) + (1,) * (x.ndim - 1)).astype(x.dtype)


def drop_path_rates(rate: float, layers: int) -> np.ndarray:
  """The references' per-layer rates: ``torch.linspace(0, rate, layers)`` over all the network's layers."""
  return np.linspace(0.0, rate, layers)


def window_partition(x: jax.Array, w: int) -> jax.Array:
  """(B, H, W, C) -> (B * H/w * W/w, w², C), windows in row-major order."""
  b, h, wd, c = x.shape
  x = x.reshape(b, h // w, w, wd // w, w, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(-1, w * w, c)


def window_reverse(windows: jax.Array, w: int, b: int, h: int, wd: int) -> jax.Array:
  c = windows.shape[-1]
  x = windows.reshape(b, h // w, wd // w, w, w, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, h, wd, c)


def shifted_window_mask(h, w, window: int, shift: int) -> jax.Array:
  """(nW, w², w²): 0 within a region, -100 across regions (the references' ``calculate_mask``: rows and columns
  fall in three bands, [0, side - window), [side - window, side - shift), [side - shift, side)). jnp, so that
  symbolic sizes (exports) work; a constant under jit."""
  def band(n):
    i = jnp.arange(n)
    return (i >= n - window).astype(jnp.int32) + (i >= n - shift).astype(jnp.int32)
  regions = band(h)[:, None] * 3 + band(w)[None, :]
  m = window_partition(regions[None, :, :, None], window)[..., 0]
  return jnp.where(m[:, None, :] != m[:, :, None], -100.0, 0.0).astype(jnp.float32)


class WindowAttention(nnx.Module):

  def __init__(self, dim: int, window: int, heads: int, *, dtype, rngs):
    if dim % heads:
      raise ValueError(f"attention width {dim} must be a multiple of the number of heads ({heads})")
    self.window, self.heads, self.dtype = window, heads, dtype
    self.qkv = linear(dim, 3 * dim, dtype=dtype, rngs=rngs)
    self.proj = linear(dim, dim, dtype=dtype, rngs=rngs)
    self.relative_position_bias_table = nnx.Param(_TRUNC(rngs.params(), ((2 * window - 1) ** 2, heads)))

  def bias(self) -> jax.Array:
    n = self.window * self.window
    table = self.relative_position_bias_table[...]
    return table[relative_position_index(self.window).reshape(-1)].reshape(n, n, -1).transpose(2, 0, 1)

  def __call__(self, x: jax.Array, mask: np.ndarray | None) -> jax.Array:
    """x: (B nW, N, C) windows of N tokens; mask: (nW, N, N) or None."""
    bw, n, c = x.shape
    qkv = self.qkv(x).reshape(bw, n, 3, self.heads, c // self.heads).transpose(2, 0, 3, 1, 4)
    q, k, v = qkv[0] * (c // self.heads) ** -0.5, qkv[1], qkv[2]
    attn = jnp.einsum("bhqd,bhkd->bhqk", q, k, preferred_element_type=jnp.float32) + self.bias()[None]
    if mask is not None:
      nw = mask.shape[0]
      attn = (attn.reshape(-1, nw, self.heads, n, n) + mask[None, :, None]).reshape(attn.shape)
    attn = jax.nn.softmax(attn, axis=-1).astype(self.dtype)
    out = jnp.einsum("bhqk,bhkd->bqhd", attn, v).reshape(bw, n, c)
    return self.proj(out)


class SwinLayer(nnx.Module):
  """One Swin transformer layer on (B, H, W, C) features whose sides are window multiples."""

  def __init__(self, dim: int, heads: int, window: int, shift: int, mlp_ratio: float, *, drop_path: float = 0.0,
               dtype, rngs):
    self.window, self.shift, self.drop_path = window, shift, float(drop_path)
    self.norm1 = layer_norm(dim, dtype=dtype, rngs=rngs)
    self.attn = WindowAttention(dim, window, heads, dtype=dtype, rngs=rngs)
    self.norm2 = layer_norm(dim, dtype=dtype, rngs=rngs)
    hidden = int(dim * mlp_ratio)
    self.fc1 = linear(dim, hidden, dtype=dtype, rngs=rngs)
    self.fc2 = linear(hidden, dim, dtype=dtype, rngs=rngs)

  def attention(self, y: jax.Array) -> jax.Array:
    """The (shifted-)window attention branch on normalised features."""
    b, h, w, _ = y.shape
    ws, s = self.window, self.shift
    if s:
      y = jnp.roll(y, (-s, -s), axis=(1, 2))
    y = self.attn(window_partition(y, ws), shifted_window_mask(h, w, ws, s) if s else None)
    y = window_reverse(y, ws, b, h, w)
    return jnp.roll(y, (s, s), axis=(1, 2)) if s else y

  def mlp(self, x: jax.Array, keys: jax.Array | None) -> jax.Array:
    """x plus the MLP branch (dropped per sample with ``keys``)."""
    return x + drop_path(self.fc2(nnx.gelu(self.fc1(self.norm2(x)), approximate=False)), self.drop_path,
                         layer_keys(keys, 1))

  def __call__(self, x: jax.Array, keys: jax.Array | None = None) -> jax.Array:
    x = x + drop_path(self.attention(self.norm1(x)), self.drop_path, layer_keys(keys, 0))
    return self.mlp(x, keys)


def residual_conv(dim: int, kind: str, *, dtype, rngs) -> nnx.List:
  """The conv closing an RSTB and the body: ``1conv`` (3x3) or ``3conv`` (3x3 to dim/4, 1x1, 3x3 back)."""
  if kind not in RESI_CONNECTIONS:
    raise ValueError(f"resi_connection must be one of {RESI_CONNECTIONS}, got {kind!r}")
  if kind == "1conv":
    return nnx.List([rdn._Conv(dim, dim, 3, dtype=dtype, rngs=rngs)])
  q = dim // 4
  return nnx.List([rdn._Conv(dim, q, 3, dtype=dtype, rngs=rngs), rdn._Conv(q, q, 1, dtype=dtype, rngs=rngs),
                   rdn._Conv(q, dim, 3, dtype=dtype, rngs=rngs)])


def apply_residual_conv(convs: nnx.List, x: jax.Array) -> jax.Array:
  for i, conv in enumerate(convs):
    x = conv(x)
    if i < len(convs) - 1:
      x = nnx.leaky_relu(x, 0.2)
  return x


class RSTB(nnx.Module):

  def __init__(self, dim: int, depth: int, heads: int, window: int, mlp_ratio: float, resi_connection: str, *,
               drop_paths=(), dtype, rngs):
    rates = list(drop_paths) or [0.0] * depth
    self.blocks = nnx.List([SwinLayer(dim, heads, window, 0 if i % 2 == 0 else window // 2, mlp_ratio,
                                      drop_path=rates[i], dtype=dtype, rngs=rngs) for i in range(depth)])
    self.conv = residual_conv(dim, resi_connection, dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array, keys: jax.Array | None = None) -> jax.Array:
    h = x
    for i, block in enumerate(self.blocks):
      h = block(h, layer_keys(keys, i))
    return apply_residual_conv(self.conv, h) + x


def pad_to_multiple(x: jax.Array, multiple: int) -> jax.Array:
  """Reflect-pads H and W (bottom, right) up to multiples of ``multiple``, as the references' testing does.
  Symbolic sizes (exports) pad by ``multiple - 1`` (a constant) and cut to the multiple; they need sides >=
  ``multiple`` (``registry.min_side``)."""
  h, w = x.shape[1:3]
  if isinstance(h, int) and isinstance(w, int):
    return jnp.pad(x, ((0, 0), (0, -h % multiple), (0, -w % multiple), (0, 0)), mode="reflect")
  p, up = multiple - 1, lambda n: (n + multiple - 1) // multiple * multiple
  x = jnp.pad(x, ((0, 0), (0, p), (0, p), (0, 0)), mode="reflect")
  return x[:, :up(h), :up(w)]


class SwinIR(nnx.Module):
  """SwinIR with ``num_blocks`` RSTBs of ``num_layers`` Swin layers, width ``features`` (the papers' embed_dim)."""

  def __init__(self, *, scale: int, num_blocks: int = 6, num_layers: int = 6, features: int = 180,
               num_heads: int = 6, window_size: int = 8, mlp_ratio: float = 2.0, upsampler: str = "pixelshuffle",
               resi_connection: str = "1conv", channels: int = 3, drop_path_rate: float = 0.0, dtype=jnp.float32,
               rngs):
    if upsampler not in UPSAMPLERS:
      raise ValueError(f"SwinIR upsampler must be one of {UPSAMPLERS}, got {upsampler!r}")
    if upsampler == "nearest+conv" and scale != 4:
      raise ValueError("SwinIR's nearest+conv reconstruction is x4 only (as the references')")
    self.scale, self.window, self.upsampler, self.dtype, self.channels = scale, window_size, upsampler, dtype, channels
    conv = lambda cin, cout: rdn._Conv(cin, cout, 3, dtype=dtype, rngs=rngs)
    e = features
    self.conv_first = conv(channels, e)
    self.patch_norm = layer_norm(e, dtype=dtype, rngs=rngs)
    rates = drop_path_rates(drop_path_rate, num_blocks * num_layers).reshape(num_blocks, num_layers)
    self.layers = nnx.List([RSTB(e, num_layers, num_heads, window_size, mlp_ratio, resi_connection,
                                 drop_paths=rates[i], dtype=dtype, rngs=rngs) for i in range(num_blocks)])
    self.norm = layer_norm(e, dtype=dtype, rngs=rngs)
    self.conv_after_body = residual_conv(e, resi_connection, dtype=dtype, rngs=rngs)
    if upsampler == "pixelshuffledirect":
      self.upsample = nnx.List([conv(e, channels * scale * scale)])
      return
    self.conv_before_upsample = conv(e, NUM_FEAT)
    if upsampler == "pixelshuffle":
      self.upsample = edsr.upsampler(NUM_FEAT, scale, dtype=dtype, rngs=rngs)
    else:
      self.conv_up1, self.conv_up2, self.conv_hr = (conv(NUM_FEAT, NUM_FEAT) for _ in range(3))
    self.conv_last = conv(NUM_FEAT, channels)

  def _reconstruct(self, x: jax.Array) -> jax.Array:
    if self.upsampler == "pixelshuffledirect":
      return rdn.pixel_shuffle(self.upsample[0](x), self.scale)
    x = nnx.leaky_relu(self.conv_before_upsample(x), 0.01)  # PyTorch's nn.LeakyReLU() default slope.
    if self.upsampler == "pixelshuffle":
      return self.conv_last(edsr.upsample(self.upsample, self.scale, x))
    up = lambda t: jnp.repeat(jnp.repeat(t, 2, axis=1), 2, axis=2)
    x = nnx.leaky_relu(self.conv_up1(up(x)), 0.2)
    x = nnx.leaky_relu(self.conv_up2(up(x)), 0.2)
    return self.conv_last(nnx.leaky_relu(self.conv_hr(x), 0.2))

  def __call__(self, x: jax.Array, keys: jax.Array | None = None) -> jax.Array:
    """Maps NHWC LR images in [0, 1] to NHWC SR images (float32, unclipped), ``scale`` times larger; ``keys``
    (one PRNG key per image) switch stochastic depth on (training)."""
    h, w = x.shape[1:3]
    mean = edsr.mean_of(self.channels) if self.channels == 3 else jnp.zeros((1, 1, 1, 1), jnp.float32)
    x = pad_to_multiple(x.astype(jnp.float32) - mean, self.window).astype(self.dtype)
    first = self.conv_first(x)
    feats = self.patch_norm(first)
    for i, layer in enumerate(self.layers):
      feats = layer(feats, layer_keys(keys, i))
    feats = apply_residual_conv(self.conv_after_body, self.norm(feats)) + first
    out = self._reconstruct(feats).astype(jnp.float32) + mean
    return out[:, :h * self.scale, :w * self.scale]


def conv_macs(features: int, resi_connection: str) -> float:
  """Multiply-adds per pixel of an RSTB's (or the body's) closing conv."""
  if resi_connection == "1conv":
    return 9 * features * features
  q = features // 4
  return 9 * features * q + q * q + 9 * q * features


def reconstruction_macs(features: int, channels: int, scale: int, upsampler: str) -> float:
  """Multiply-adds per LR pixel of the reconstruction."""
  if upsampler == "pixelshuffledirect":
    return 9 * features * channels * scale * scale
  macs = 9 * features * NUM_FEAT
  if upsampler == "pixelshuffle":
    return macs + edsr.upsampler_macs(NUM_FEAT, channels, scale)
  return macs + 9 * NUM_FEAT * NUM_FEAT * (4 + 16 + 16) + 9 * NUM_FEAT * channels * 16


def flops_per_output_pixel(*, scale: int, num_blocks: int, num_layers: int, features: int, window_size: int,
                           mlp_ratio: float, upsampler: str, resi_connection: str, channels: int = 3) -> float:
  """Analytic multiply-add FLOPs (2 per MAC) per output pixel: the linear layers (qkv, projection, MLP), the
  attention products (2 N E per token for N = window² tokens per window), the convs; norms, softmax and biases
  ignored."""
  e = features
  layer = 3 * e * e + e * e + 2 * window_size ** 2 * e + 2 * e * e * mlp_ratio
  body = num_blocks * (num_layers * layer + conv_macs(e, resi_connection)) + conv_macs(e, resi_connection)
  macs = 9 * channels * e + body + reconstruction_macs(e, channels, scale, upsampler)
  return 2.0 * macs / (scale * scale)


def receptive_field_radius(num_blocks: int, num_layers: int, window_size: int, resi_connection: str) -> int:
  """Radius in LR pixels an output pixel can depend on: each Swin layer reaches up to window - 1 pixels (its
  window), each conv 1 (3conv: 2), plus the reconstruction's. Tiles are also anchored to their own window grid,
  so tiled and whole inference differ slightly at any overlap (docs/models.md gives the measured difference)."""
  per_conv = 1 if resi_connection == "1conv" else 2
  return num_blocks * (num_layers * (window_size - 1) + per_conv) + per_conv + 1 + 3


def check_config(m) -> None:
  """config.model's rules of SwinIR's (and HAT's) window-attention fields, beyond each field's own range."""
  require(m.features % m.num_heads == 0, "model.num_heads", m.num_heads,
           f"a divisor of model.features={m.features} (each head gets features / num_heads channels)")
  require(m.window_size >= 2, "model.window_size", m.window_size, "an integer >= 2 (layers shift by half a window)")
  require(m.upsampler != "nearest+conv" or m.scale == 4, "model.upsampler", m.upsampler,
           f"'pixelshuffle' or 'pixelshuffledirect' at model.scale={m.scale} ('nearest+conv' is x4 only)")
  require(m.resi_connection == "1conv" or m.features % 4 == 0, "model.resi_connection", m.resi_connection,
           f"'1conv' for model.features={m.features} ('3conv' needs a multiple of 4)")
