"""The full config: its defaults, assembled from the parts that own each section (``defaults``), a saved run's
config read over them (``saved_config``), and the checks before any heavy work (``validate``; every error names
the key and what it accepts).

Sections and their owners: ``model`` (``models.registry``), ``data`` (``datasets``), ``realesrgan``
(``degradations.realesrgan``), ``loss`` / ``perceptual`` / ``gan`` (``losses``), ``train`` and the run's top-level
fields (``train_config``). Readers of a workdir that need only the model (evaluation, upscaling, the hub) use
``run_dir.load_config`` instead, which imports none of the training side.
"""

from __future__ import annotations

import math

import ml_collections

from sr_jax import losses, metrics
from sr_jax.core import errors
from sr_jax.data import datasets
from sr_jax.data.degradations import realesrgan
from sr_jax.evaluation import eval_lib
from sr_jax.models import registry
from sr_jax.training import train_config
from sr_jax.workdir import run_dir

MIN_PATCH = datasets.MIN_PATCH
ConfigError = errors.ConfigError  # A config value is invalid or contradicts the workdir; the message names the key.


def defaults() -> ml_collections.ConfigDict:
  """Every field of the config with its default (the RDN paper's x2 recipe on DIV2K; configs/default.py)."""
  config = ml_collections.ConfigDict()
  config.seed = 0  # Seeds parameter init and the data order (patch i of the run is a function of seed and i).
  config.model = registry.default_config()
  config.data = datasets.default_config()
  # Real-ESRGAN's degradation model (data.degradation='realesrgan'): every range and probability, with the values
  # of train_realesrgan_x4plus.yml. Fields ending in 2 are the second stage's; second_order=False keeps one stage.
  config.realesrgan = realesrgan.default_config()
  losses.default_config(config)
  train_config.default_config(config)
  return config


def saved_config(workdir: str) -> ml_collections.ConfigDict:
  """The full config of the run in ``workdir``: its config.json over ``defaults()`` (runs written before a key
  existed get its default; keys no longer used are dropped)."""
  return run_dir.overlay(defaults(), run_dir.read_config_json(workdir))


_require = errors.require


def _validate_finite(node: ml_collections.ConfigDict, prefix: str = "") -> None:
  """Every number of the config is finite: NaN or infinity passes every bound check (inf > 0) and reaches the
  optimiser or the loss, where it turns the run to NaN at its first step."""
  for key, value in node.items():
    if isinstance(value, ml_collections.ConfigDict):
      _validate_finite(value, f"{prefix}{key}.")
    elif isinstance(value, float) and not math.isfinite(value):
      raise ConfigError(f"config.{prefix}{key}={value}: not a finite number; give a finite value")


def validate(config: ml_collections.ConfigDict, num_devices: int | None = None,
             process_count: int = 1) -> None:
  """Each part checks its own section (``registry.validate``: the model and its architecture's rules;
  ``datasets.validate``; ``realesrgan.validate``; ``train_config.validate``; ``losses.validate``); what spans
  sections is checked here: every number finite, the degradation model's section when it is used, the validation
  metrics and the one that picks 'best'."""
  _validate_finite(config)
  registry.validate(config.model)
  datasets.validate(config)
  if config.data.degradation == "realesrgan":
    realesrgan.validate(config.realesrgan)
  if config.model.scale == 1 and config.data.degradation == "bicubic" and not config.data.lr_from_dataset:
    raise ConfigError("config.model.scale=1 with config.data.degradation='bicubic': a bicubic reduction by 1 "
                      "leaves the image as it is, so the network would learn the identity. Same-size restoration "
                      "needs inputs degraded at the same size: data.degradation='realesrgan' (its final resize "
                      "goes back to the input size), or your own pairs (data.train='paired:HR_DIR,LR_DIR' with "
                      "data.lr_from_dataset=True)")
  train_config.validate(config, num_devices, process_count)
  losses.validate(config)
  names = eval_lib.config_metrics(config)
  _require(all(m in metrics.NAMES for m in names), "val_metrics", config.val_metrics,
           "comma-separated names of " + ", ".join(metrics.NAMES))
  _require(config.best_metric in metrics.RANKABLE and config.best_metric in names + ["psnr", "ssim"], "best_metric",
           config.best_metric, f"one of {', '.join(metrics.RANKABLE)} (psnr and ssim always; the others when "
           "val_metrics includes them)")


def resume_conflicts(saved: ml_collections.ConfigDict, config: ml_collections.ConfigDict) -> list[str]:
  """Human-readable differences that make ``saved`` (a workdir's config) another model than ``config``."""
  out = []
  if registry.uses_gan(saved) != registry.uses_gan(config):
    out.append(f"loss.adversarial: the workdir was trained {'with' if registry.uses_gan(saved) else 'without'} a "
               "discriminator, this config " + ("has one" if registry.uses_gan(config) else "has none")
               + " (to start a GAN from a pixel-loss run use train.init_from)")
  if (saved.train.ema_decay > 0) != (config.train.ema_decay > 0):
    out.append(f"train.ema_decay: the workdir was trained {'with' if saved.train.ema_decay > 0 else 'without'} "
               f"EMA weights, this config {'keeps' if config.train.ema_decay > 0 else 'keeps no'} EMA weights "
               "(to switch, start a new run with train.init_from)")
  old, new = registry.identity(saved.model), registry.identity(config.model)
  out += [f"{k}: workdir has {old[k]!r}, config has {new.get(k)!r}" for k in old if old[k] != new.get(k)]
  return out
