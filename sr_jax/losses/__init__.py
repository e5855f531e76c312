"""The losses of the SR literature, picked and weighted by ``config.loss``; all on [0, 1] RGB images.

* ``l1``, ``mse``: mean absolute / squared error (RDN and EDSR use L1).
* ``charbonnier``: mean of sqrt((pred - target)^2 + eps^2) (LapSRN; ``config.loss.charbonnier_eps``).
* ``ssim``: 1 - SSIM, BasicSR's differentiable SSIM on RGB; ``ms_ssim``: 1 - MS-SSIM (pytorch_msssim's; HR patches
  of at least 161 pixels) (pixel.py).
* ``perceptual``: VGG feature distance (``config.perceptual``; perceptual.py).
* ``dists``: DISTS (Ding et al. 2020) as a loss, the metric's definition and weights (perceptual.py).
* ``ldl``: LDL's artifact-weighted L1 (Liang et al. CVPR 2022; needs the EMA model, ``train.ema_decay``; ldl.py).
* ``adversarial``: the generator side of ``config.gan.loss`` (ragan, vanilla, lsgan, hinge; gan.py); the
  discriminator side is in the same table.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from sr_jax.losses.gan import BATCH_COUPLED, GAN_LOSSES, ragan_discriminator_loss, ragan_generator_loss
from sr_jax.losses.ldl import ldl_loss
from sr_jax.losses.perceptual import DISTSLoss, Perceptual, parse_layers
from sr_jax.losses.pixel import CRITERIA, MS_SSIM_MIN_SIDE, charbonnier, ms_ssim_loss, ssim_loss
from sr_jax.nets import dists, vgg_weights

PIXEL_LOSSES = ("l1", "mse", "charbonnier", "ssim", "ms_ssim")
ALL_LOSSES = PIXEL_LOSSES + ("perceptual", "dists", "ldl", "adversarial")
NEEDS_EMA = ("ldl",)  # Terms that read the EMA model's output.

__all__ = ["ALL_LOSSES", "BATCH_COUPLED", "CRITERIA", "GAN_LOSSES", "MS_SSIM_MIN_SIDE", "NEEDS_EMA", "PIXEL_LOSSES",
           "GeneratorLoss",
           "Perceptual", "DISTSLoss", "build", "parse_layers", "ragan_discriminator_loss", "ragan_generator_loss"]


@dataclasses.dataclass(frozen=True)
class GeneratorLoss:
  """Weighted sum of the configured terms; static (hashable) so the jitted step can close over it."""
  weights: tuple[tuple[str, float], ...]  # (term, weight) with weight > 0.
  charbonnier_eps: float = 1e-3
  perceptual: Perceptual | None = None
  dists: DISTSLoss | None = None

  @property
  def needs_ema(self) -> bool:
    return any(name in NEEDS_EMA for name, _ in self.weights)

  def pixel_terms(self, pred: jax.Array, target: jax.Array) -> dict[str, jax.Array]:
    out = {}
    for name, _ in self.weights:
      if name == "charbonnier":
        out[name] = charbonnier(pred, target, self.charbonnier_eps)
      elif name == "ssim":
        out[name] = ssim_loss(pred, target)
      elif name == "ms_ssim":
        out[name] = ms_ssim_loss(pred, target)
      elif name in CRITERIA:
        out[name] = CRITERIA[name](pred, target)
    return out

  def terms(self, pred: jax.Array, target: jax.Array, frozen: dict,
            ema_pred: jax.Array | None = None) -> dict[str, jax.Array]:
    """Every term except 'adversarial' (which needs the discriminator: see train_step); ``ema_pred``: the EMA
    model's output on the same batch (constant), for LDL."""
    pred, target = pred.astype(jnp.float32), target.astype(jnp.float32)
    out = self.pixel_terms(pred, target)
    if self.perceptual is not None:
      out["perceptual"] = self.perceptual(frozen["vgg"], pred, target)
    if self.dists is not None:
      out["dists"] = self.dists(frozen["dists"], pred, target)
    if "ldl" in dict(self.weights):
      out["ldl"] = ldl_loss(target, pred, ema_pred.astype(jnp.float32))
    return out

  def total(self, terms: dict[str, jax.Array]) -> jax.Array:
    w = dict(self.weights)
    return sum(w[k] * v for k, v in terms.items() if k in w)


def _perceptual(config: ml_collections.ConfigDict) -> tuple[Perceptual, nnx.State]:
  p = config.perceptual
  layers = parse_layers(p.layers)
  w = vgg_weights.load(p.weights)
  graphdef, params = vgg_weights.build(w, p.network, tuple(layers), before_relu=p.before_relu,
                                       dtype=jnp.dtype(config.model.dtype))
  return Perceptual(graphdef, tuple(layers.items()), p.criterion), params


def build(config: ml_collections.ConfigDict) -> tuple[GeneratorLoss, dict]:
  """GeneratorLoss and the frozen arrays it needs ({'vgg': params} for a perceptual term, {'dists': ...} for
  DISTS, else {})."""
  loss_cfg = config.loss
  weights = tuple((name, float(loss_cfg[name])) for name in ALL_LOSSES if float(loss_cfg[name]) > 0)
  perceptual, dists_loss, frozen = None, None, {}
  if dict(weights).get("perceptual"):
    perceptual, frozen["vgg"] = _perceptual(config)
  if dict(weights).get("dists"):
    try:
      graphdef, frozen["dists"] = dists.load()
    except dists.DISTSWeightsError as e:
      raise dists.DISTSWeightsError(f"config.loss.dists={loss_cfg.dists}: {e}") from None
    dists_loss = DISTSLoss(graphdef)
  return GeneratorLoss(weights, float(loss_cfg.charbonnier_eps), perceptual, dists_loss), frozen
