"""SRVGGNetCompact (Real-ESRGAN's compact network: realesr-animevideov3, realesr-general-x4v3) in Flax NNX, as
BasicSR's ``archs/srvgg_arch.py``.

* conv3x3(C -> F) + activation, then ``num_conv`` times conv3x3(F -> F) + activation, all at LR resolution;
* conv3x3(F -> C * s^2) + pixel shuffle (PyTorch's channel order);
* plus the input up-sampled by nearest neighbour (the network learns the residual).

The activation is PReLU with one learned slope per channel (the published models; PyTorch's init 0.25), or
ReLU / LeakyReLU(0.1) as BasicSR offers. Images are NHWC floats in [0, 1]; any size works (no padding needed).

Initialisation (training from scratch; imported weights replace it): He-normal for the activation (gain² =
2 / (1 + slope²)) and the last conv at zero, so the network starts as exactly nearest-neighbour up-sampling with
its body's signal at unit scale (Fixup's and ReZero's zero-initialised last layer). BasicSR's module keeps
PyTorch's default conv init, which shrinks the signal layer by layer through the plain stack, and a random
residual at the start is cheapest removed by shrinking the body: either way a 32-layer network never leaves
nearest-neighbour up-sampling. The runs that showed it are in docs/models.md (SRVGGNetCompact).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from sr_jax.models import rdn

ACTIVATIONS = ("prelu", "relu", "leakyrelu")
NEGATIVE_SLOPES = {"prelu": 0.25, "relu": 0.0, "leakyrelu": 0.1}  # At init (PReLU's learned slopes start at 0.25).


def he_init(activation: str):
  """He-normal (fan in) for ``activation``'s negative slope."""
  gain2 = 2.0 / (1.0 + NEGATIVE_SLOPES[activation] ** 2)
  return nnx.initializers.variance_scaling(gain2, "fan_in", "normal")


class PReLU(nnx.Module):
  """PyTorch ``nn.PReLU(num_parameters=features)``: max(0, x) + slope_c * min(0, x)."""

  def __init__(self, features: int):
    self.slope = nnx.Param(jnp.full((features,), 0.25, jnp.float32))

  def __call__(self, x: jax.Array) -> jax.Array:
    return jnp.where(x >= 0, x, x * self.slope[...].astype(x.dtype))




class SRVGGNetCompact(nnx.Module):
  """``num_conv`` body convolutions of ``features`` channels, up-sampling only in the last layer."""

  def __init__(self, *, scale: int, num_conv: int = 16, features: int = 64, channels: int = 3,
               activation: str = "prelu", dtype=jnp.float32, rngs: nnx.Rngs):
    if activation not in ACTIVATIONS:
      raise ValueError(f"SRVGGNetCompact activation must be one of {ACTIVATIONS}, got {activation!r}")
    self.scale = scale
    self.dtype = dtype
    conv = lambda cin, cout, init=he_init(activation): rdn._Conv(cin, cout, 3, dtype=dtype, rngs=rngs,
                                                                  kernel_init=init)
    self.convs = nnx.List([conv(channels, features)] + [conv(features, features) for _ in range(num_conv)]
                          + [conv(features, channels * scale * scale, nnx.initializers.zeros)])
    self.activation = activation
    self.prelus = nnx.List([PReLU(features) for _ in range(num_conv + 1)] if activation == "prelu" else [])

  def _activate(self, i: int, h: jax.Array) -> jax.Array:
    if self.activation == "prelu":
      return self.prelus[i](h)
    return nnx.relu(h) if self.activation == "relu" else nnx.leaky_relu(h, 0.1)

  def __call__(self, x: jax.Array) -> jax.Array:
    """Maps NHWC LR images in [0, 1] to NHWC SR images (float32, unclipped), ``scale`` times larger."""
    x = x.astype(self.dtype)
    h = x
    for i, conv in enumerate(self.convs[:-1]):
      h = conv(h)
      h = self._activate(i, h)
    h = rdn.pixel_shuffle(self.convs[-1](h), self.scale)
    base = jnp.repeat(jnp.repeat(x, self.scale, axis=1), self.scale, axis=2)
    return (h + base).astype(jnp.float32)


def receptive_field_radius(num_conv: int) -> int:
  """Radius in LR pixels: ``num_conv + 2`` 3x3 convolutions, all at LR resolution."""
  return num_conv + 2


def flops_per_output_pixel(*, scale: int, num_conv: int, features: int, channels: int = 3) -> float:
  """Analytic multiply-add FLOPs (2 per MAC) per output pixel, biases and activations ignored."""
  f = features
  macs = 9 * channels * f + num_conv * 9 * f * f + 9 * f * channels * scale * scale  # Per LR pixel.
  return 2.0 * macs / (scale * scale)
