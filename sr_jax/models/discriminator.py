"""VGG-style patch discriminator for adversarial SR training (ESRGAN's ``VGGStyleDiscriminator``, patch head).

Stages of conv3x3 (stride 1) + conv4x4 (stride 2), each followed by batch normalisation (except the first
conv) and LeakyReLU(0.2), channels nf, 2nf, 4nf, 8nf, 8nf, ... as in ESRGAN. Instead of ESRGAN's dense head,
which fixes the input at 128x128, a conv3x3 -> 1 head gives one logit per receptive-field patch, so any HR
patch size divisible by 2**num_stages works.

Batch normalisation always uses the statistics of the current (global) batch, the way a discriminator is only
ever run in training; there are no running averages to carry.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


class BatchNormTrain(nnx.Module):
  """Batch normalisation with batch statistics only (mean/variance over N, H, W)."""

  def __init__(self, features: int, *, eps: float = 1e-5):
    self.scale = nnx.Param(jnp.ones((features,), jnp.float32))
    self.bias = nnx.Param(jnp.zeros((features,), jnp.float32))
    self.eps = eps

  def __call__(self, x: jax.Array) -> jax.Array:
    x32 = x.astype(jnp.float32)
    mean = jnp.mean(x32, axis=(0, 1, 2))
    var = jnp.mean(jnp.square(x32 - mean), axis=(0, 1, 2))
    y = (x32 - mean) * jax.lax.rsqrt(var + self.eps) * self.scale[...] + self.bias[...]
    return y.astype(x.dtype)


class PatchDiscriminator(nnx.Module):

  def __init__(self, *, channels: int = 3, features: int = 64, num_stages: int = 4, dtype=jnp.float32,
               rngs: nnx.Rngs):
    conv = lambda cin, cout, k, s: nnx.Conv(cin, cout, (k, k), strides=(s, s), padding=((1, 1), (1, 1)),
                                            dtype=dtype, param_dtype=jnp.float32, rngs=rngs)
    self.dtype = dtype
    self.first = conv(channels, features, 3, 1)
    layers, norms, cin = [], [], features
    for i in range(num_stages):
      cout = features * min(2**i, 8)
      if i > 0:
        layers.append(conv(cin, cout, 3, 1))
        norms.append(BatchNormTrain(cout))
        cin = cout
      layers.append(conv(cin, cout, 4, 2))
      norms.append(BatchNormTrain(cout))
      cin = cout
    self.layers = nnx.List(layers)
    self.norms = nnx.List(norms)
    self.head = conv(cin, 1, 3, 1)

  def __call__(self, x: jax.Array, update: bool = False) -> jax.Array:
    """NHWC images in [0, 1] -> NHW'W'1 logits (float32), one per patch (``update``: no state to update)."""
    del update
    h = nnx.leaky_relu(self.first((x * 2.0 - 1.0).astype(self.dtype)), 0.2)
    for conv, norm in zip(self.layers, self.norms):
      h = nnx.leaky_relu(norm(conv(h)), 0.2)
    return self.head(h).astype(jnp.float32)
