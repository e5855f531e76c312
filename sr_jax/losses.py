"""The losses of the SR literature, picked and weighted by ``config.loss``; all on [0, 1] RGB images.

* ``l1``, ``mse``: mean absolute / squared error (RDN and EDSR use L1).
* ``charbonnier``: mean of sqrt((pred - target)^2 + eps^2) (LapSRN; ``config.loss.charbonnier_eps``).
* ``perceptual``: sum over VGG layers of weight * criterion(features(pred), features(target)), the target's
  features without gradient (SRGAN's VGG54, ESRGAN's conv5_4 before ReLU, Real-ESRGAN's conv1_2..conv5_4
  with 0.1/0.1/1/1/1; ``config.perceptual``). The VGG is frozen: its weights are an argument of the step,
  never differentiated nor in the optimizer state.
* ``adversarial``: relativistic average GAN (ESRGAN), generator side; the discriminator side is
  ``ragan_discriminator_loss``.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import nnx

from sr_jax import vgg_weights

PIXEL_LOSSES = ("l1", "mse", "charbonnier")
ALL_LOSSES = PIXEL_LOSSES + ("perceptual", "adversarial")
CRITERIA: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
    "l1": lambda a, b: jnp.mean(jnp.abs(a - b)),
    "mse": lambda a, b: jnp.mean(jnp.square(a - b)),
}


def charbonnier(pred: jax.Array, target: jax.Array, eps: float) -> jax.Array:
  return jnp.mean(jnp.sqrt(jnp.square(pred - target) + eps * eps))


def parse_layers(spec: str, key: str = "perceptual.layers") -> dict[str, float]:
  """'conv5_4' or 'conv1_2:0.1,conv2_2:0.1,conv3_4:1' -> {layer: weight} (a bare name weighs 1)."""
  out = {}
  for part in (p.strip() for p in spec.split(",")):
    if not part:
      continue
    name, _, weight = part.partition(":")
    try:
      w = float(weight) if weight else 1.0
    except ValueError:
      raise ValueError(f"config.{key}={spec!r}: weight {weight!r} of {name!r} is not a number") from None
    if w < 0:
      raise ValueError(f"config.{key}={spec!r}: weight of {name!r} is negative")
    out[name.strip()] = w
  if not out:
    raise ValueError(f"config.{key} is empty; e.g. 'conv5_4' or 'conv1_2:0.1,conv2_2:0.1,conv3_4:1'")
  return out


@dataclasses.dataclass(frozen=True)
class Perceptual:
  graphdef: nnx.GraphDef
  layer_weights: tuple[tuple[str, float], ...]
  criterion: str

  def __call__(self, vgg_params: nnx.State, pred: jax.Array, target: jax.Array) -> jax.Array:
    vgg = nnx.merge(self.graphdef, jax.lax.stop_gradient(vgg_params))
    fp = vgg(pred)
    ft = jax.tree.map(jax.lax.stop_gradient, vgg(target))
    return sum(w * CRITERIA[self.criterion](fp[name], ft[name]) for name, w in self.layer_weights)


def _bce_logits(logits: jax.Array, label: float) -> jax.Array:
  return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, jnp.full_like(logits, label)))


def ragan_generator_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  """ESRGAN eq. (2): real judged "less real than the average fake", fake "more real than the average real"."""
  real, fake = real_logits.astype(jnp.float32), fake_logits.astype(jnp.float32)
  return 0.5 * (_bce_logits(real - jnp.mean(fake), 0.0) + _bce_logits(fake - jnp.mean(real), 1.0))


def ragan_discriminator_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  real, fake = real_logits.astype(jnp.float32), fake_logits.astype(jnp.float32)
  return 0.5 * (_bce_logits(real - jnp.mean(fake), 1.0) + _bce_logits(fake - jnp.mean(real), 0.0))


def vanilla_generator_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  """Real-ESRGAN's (BasicSR 'vanilla'): the fake judged real, BCE with logits; ``real_logits`` unused."""
  del real_logits
  return _bce_logits(fake_logits.astype(jnp.float32), 1.0)


def vanilla_discriminator_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  """BCE(real, 1) + BCE(fake, 0), BasicSR's two discriminator terms summed."""
  return _bce_logits(real_logits.astype(jnp.float32), 1.0) + _bce_logits(fake_logits.astype(jnp.float32), 0.0)


# config.gan.loss -> (generator loss, discriminator loss), each f(real_logits, fake_logits).
GAN_LOSSES = {"ragan": (ragan_generator_loss, ragan_discriminator_loss),
              "vanilla": (vanilla_generator_loss, vanilla_discriminator_loss)}


@dataclasses.dataclass(frozen=True)
class GeneratorLoss:
  """Weighted sum of the configured terms; static (hashable) so the jitted step can close over it."""
  weights: tuple[tuple[str, float], ...]  # (term, weight) with weight > 0.
  charbonnier_eps: float = 1e-3
  perceptual: Perceptual | None = None

  def pixel_terms(self, pred: jax.Array, target: jax.Array) -> dict[str, jax.Array]:
    out = {}
    for name, _ in self.weights:
      if name == "charbonnier":
        out[name] = charbonnier(pred, target, self.charbonnier_eps)
      elif name in CRITERIA:
        out[name] = CRITERIA[name](pred, target)
    return out

  def terms(self, pred: jax.Array, target: jax.Array, frozen: dict) -> dict[str, jax.Array]:
    """Every term except 'adversarial' (which needs the discriminator: see train_step)."""
    pred, target = pred.astype(jnp.float32), target.astype(jnp.float32)
    out = self.pixel_terms(pred, target)
    if self.perceptual is not None:
      out["perceptual"] = self.perceptual(frozen["vgg"], pred, target)
    return out

  def total(self, terms: dict[str, jax.Array]) -> jax.Array:
    w = dict(self.weights)
    return sum(w[k] * v for k, v in terms.items() if k in w)


def uses_gan(config: ml_collections.ConfigDict) -> bool:
  """Whether the run trains a discriminator (config.loss.adversarial > 0)."""
  return float(config.loss.adversarial) > 0


def build(config: ml_collections.ConfigDict) -> tuple[GeneratorLoss, dict]:
  """GeneratorLoss and the frozen arrays it needs ({'vgg': params} for a perceptual term, else {})."""
  loss_cfg = config.loss
  weights = tuple((name, float(loss_cfg[name])) for name in ALL_LOSSES if float(loss_cfg[name]) > 0)
  perceptual, frozen = None, {}
  if dict(weights).get("perceptual"):
    p = config.perceptual
    layers = parse_layers(p.layers)
    w = vgg_weights.load(p.weights)
    graphdef, params = vgg_weights.build(w, p.network, tuple(layers), before_relu=p.before_relu,
                                         dtype=jnp.dtype(config.model.dtype))
    perceptual = Perceptual(graphdef, tuple(layers.items()), p.criterion)
    frozen = {"vgg": params}
  return GeneratorLoss(weights, float(loss_cfg.charbonnier_eps), perceptual), frozen
