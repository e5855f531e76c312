"""GAN objectives, each a pair (generator loss, discriminator loss) of f(real_logits, fake_logits).

* ``ragan``: relativistic average GAN (ESRGAN eq. 2); the averages run over the whole batch.
* ``vanilla``: BCE with logits (Real-ESRGAN; BasicSR's ``GANLoss('vanilla')``).
* ``lsgan``: least squares (Mao et al. 2017; BasicSR's ``'lsgan'``): generator mean((fake - 1)²), discriminator
  mean((real - 1)²) + mean(fake²).
* ``hinge``: generator -mean(fake), discriminator mean(relu(1 - real)) + mean(relu(1 + fake)) (BasicSR's
  ``'hinge'``).
The discriminator's loss is its real and fake terms summed, as BasicSR's two backward passes add them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def _bce_logits(logits: jax.Array, label: float) -> jax.Array:
  return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, jnp.full_like(logits, label)))


def _f32(*xs):
  return tuple(x.astype(jnp.float32) for x in xs)


def ragan_generator_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  """ESRGAN eq. (2): real judged "less real than the average fake", fake "more real than the average real"."""
  real, fake = _f32(real_logits, fake_logits)
  return 0.5 * (_bce_logits(real - jnp.mean(fake), 0.0) + _bce_logits(fake - jnp.mean(real), 1.0))


def ragan_discriminator_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  real, fake = _f32(real_logits, fake_logits)
  return 0.5 * (_bce_logits(real - jnp.mean(fake), 1.0) + _bce_logits(fake - jnp.mean(real), 0.0))


def vanilla_generator_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  """Real-ESRGAN's (BasicSR 'vanilla'): the fake judged real, BCE with logits; ``real_logits`` unused."""
  del real_logits
  return _bce_logits(fake_logits.astype(jnp.float32), 1.0)


def vanilla_discriminator_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  """BCE(real, 1) + BCE(fake, 0), BasicSR's two discriminator terms summed."""
  return _bce_logits(real_logits.astype(jnp.float32), 1.0) + _bce_logits(fake_logits.astype(jnp.float32), 0.0)


def lsgan_generator_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  del real_logits
  return jnp.mean(jnp.square(fake_logits.astype(jnp.float32) - 1.0))


def lsgan_discriminator_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  real, fake = _f32(real_logits, fake_logits)
  return jnp.mean(jnp.square(real - 1.0)) + jnp.mean(jnp.square(fake))


def hinge_generator_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  del real_logits
  return -jnp.mean(fake_logits.astype(jnp.float32))


def hinge_discriminator_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  real, fake = _f32(real_logits, fake_logits)
  return jnp.mean(jax.nn.relu(1.0 - real)) + jnp.mean(jax.nn.relu(1.0 + fake))


# config.gan.loss -> (generator loss, discriminator loss).
GAN_LOSSES = {"ragan": (ragan_generator_loss, ragan_discriminator_loss),
              "vanilla": (vanilla_generator_loss, vanilla_discriminator_loss),
              "lsgan": (lsgan_generator_loss, lsgan_discriminator_loss),
              "hinge": (hinge_generator_loss, hinge_discriminator_loss)}
# Objectives whose loss averages over the whole batch (not a mean of per-sample terms): gradient accumulation
# over micro-batches would change them.
BATCH_COUPLED = ("ragan",)
