"""Real-ESRGAN's U-Net discriminator with spectral normalisation (BasicSR ``UNetDiscriminatorSN``), Flax NNX.

conv0 (3x3); three stride-2 4x4 convs (nf -> 2nf -> 4nf -> 8nf); three 3x3 convs each after a bilinear x2
up-sampling (align_corners=False) with skip connections from the down path; two more 3x3 convs; conv9 -> one
logit per pixel. LeakyReLU 0.2 after every conv but the last; every conv but the first and last is spectrally
normalised and has no bias.

Spectral normalisation is PyTorch's ``spectral_norm`` (one power iteration, eps 1e-12, the kernel viewed as
out x (in*kh*kw)): the vectors u and v are ``SpectralState`` variables, outside the parameters and their
optimizer. The discriminator's training step moves them two power iterations (PyTorch does one per forward, and
BasicSR runs the real and the fake batch through it) before scoring both batches with the new u, v; the
generator's step and evaluation use the stored ones. PyTorch also iterates during the generator's step and
scores the real batch after one iteration only; here only the discriminator's steps move u and v.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from sr_jax.models import rdn


class SpectralState(nnx.Variable):
  """The power-iteration vectors of a spectrally normalised layer (not trained, checkpointed)."""


def _normalize(x: jax.Array, eps: float = 1e-12) -> jax.Array:
  return x / jnp.maximum(jnp.linalg.norm(x), eps)


def bilinear_up2(x: jax.Array) -> jax.Array:
  """x2 bilinear up-sampling with PyTorch's align_corners=False (half-pixel centres, edges clamped)."""
  n, h, w, c = x.shape
  return jax.image.resize(x, (n, 2 * h, 2 * w, c), method="bilinear", antialias=False)


class SNConv(nnx.Module):
  """Bias-free conv whose kernel is divided by its largest singular value (estimated by power iteration)."""

  def __init__(self, cin: int, cout: int, k: int, stride: int, *, dtype, rngs: nnx.Rngs):
    self.kernel = nnx.Param(rdn._TORCH_KERNEL_INIT(rngs.params(), (k, k, cin, cout), jnp.float32))
    self.u = SpectralState(_normalize(jax.random.normal(rngs.params(), (cout,))))
    self.v = SpectralState(_normalize(jax.random.normal(rngs.params(), (cin * k * k,))))
    self.stride, self.pad, self.dtype = stride, 1, dtype
    # One iteration now, so the stored u, v give a sigma near the largest singular value from the first step on
    # (random u, v would give u.Wv ~ 0 and blow the kernel up; PyTorch iterates before its first forward).
    self.power_iteration()

  def weight_matrix(self) -> jax.Array:
    """The kernel as PyTorch's (out, in*kh*kw) matrix."""
    k = self.kernel[...]
    return k.transpose(3, 2, 0, 1).reshape(k.shape[3], -1)

  def power_iteration(self) -> None:
    """One step of PyTorch's power iteration on the stored u, v (no gradient)."""
    w = jax.lax.stop_gradient(self.weight_matrix())
    v = _normalize(w.T @ self.u[...])
    self.u[...], self.v[...] = _normalize(w @ v), v

  def __call__(self, x: jax.Array, update: bool = False) -> jax.Array:
    if update:
      self.power_iteration()
    w = self.weight_matrix()
    u, v = self.u[...], self.v[...]
    sigma = jnp.dot(jax.lax.stop_gradient(u), w @ jax.lax.stop_gradient(v))
    kernel = (self.kernel[...] / sigma).astype(self.dtype)
    return jax.lax.conv_general_dilated(x.astype(self.dtype), kernel, (self.stride,) * 2,
                                        ((self.pad, self.pad),) * 2, dimension_numbers=("NHWC", "HWIO", "NHWC"))


class UNetDiscriminatorSN(nnx.Module):

  def __init__(self, *, channels: int = 3, features: int = 64, skip_connection: bool = True, dtype=jnp.float32,
               rngs: nnx.Rngs):
    f = features
    conv = lambda cin, cout: rdn._Conv(cin, cout, 3, dtype=dtype, rngs=rngs)
    sn = lambda cin, cout, k, s: SNConv(cin, cout, k, s, dtype=dtype, rngs=rngs)
    self.dtype, self.skip = dtype, skip_connection
    self.conv0 = conv(channels, f)
    self.down = nnx.List([sn(f, 2 * f, 4, 2), sn(2 * f, 4 * f, 4, 2), sn(4 * f, 8 * f, 4, 2)])
    self.up = nnx.List([sn(8 * f, 4 * f, 3, 1), sn(4 * f, 2 * f, 3, 1), sn(2 * f, f, 3, 1)])
    self.extra = nnx.List([sn(f, f, 3, 1), sn(f, f, 3, 1)])
    self.conv9 = conv(f, 1)

  def power_iteration(self, steps: int = 1) -> None:
    """Moves every spectrally normalised layer's u, v ``steps`` iterations (the training step does this)."""
    for _ in range(steps):
      for conv in [*self.down, *self.up, *self.extra]:
        conv.power_iteration()

  def __call__(self, x: jax.Array, update: bool = False) -> jax.Array:
    """NHWC images in [0, 1] -> NHW1 logits (float32), one per pixel; ``update``: iterate u, v first, per layer
    (PyTorch's training-mode forward; eager use only: a traced step calls ``power_iteration`` itself)."""
    act = lambda h: nnx.leaky_relu(h, 0.2)
    h = act(self.conv0(x.astype(self.dtype)))
    skips = [h]
    for conv in self.down:
      h = act(conv(h, update))
      skips.append(h)
    skips.pop()  # The deepest map is not a skip.
    for conv in self.up:
      h = act(conv(bilinear_up2(h), update))
      if self.skip:
        h = h + skips.pop()
    for conv in self.extra:
      h = act(conv(h, update))
    return self.conv9(h).astype(jnp.float32)
