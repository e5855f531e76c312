"""Checks a config before any heavy work; every error names the key and what it accepts."""

from __future__ import annotations

import json

import ml_collections

from sr_jax import datasets
from sr_jax.train_step import PIXEL_LOSSES


class ConfigError(ValueError):
  pass


def _require(ok: bool, key: str, value, accepted: str) -> None:
  if not ok:
    raise ConfigError(f"config.{key}={value!r} is invalid; accepted: {accepted}")


def validate(config: ml_collections.ConfigDict, num_devices: int | None = None,
             process_count: int = 1) -> None:
  m, d, t = config.model, config.data, config.train
  _require(m.scale in (2, 3, 4), "model.scale", m.scale, "2, 3 or 4")
  for key in ("num_blocks", "num_layers", "growth", "features"):
    _require(int(m[key]) >= 1, f"model.{key}", m[key], "an integer >= 1")
  _require(m.channels in (1, 3), "model.channels", m.channels, "1 (gray) or 3 (RGB)")
  _require(m.dtype in ("float32", "bfloat16"), "model.dtype", m.dtype, "'float32' or 'bfloat16'")
  _require(d.patch_size >= 1, "data.patch_size", d.patch_size, "an integer >= 1 (LR pixels)")
  _require(d.cache_gb >= 0, "data.cache_gb", d.cache_gb, "a size in GB >= 0")
  for key in ("train", "val"):
    try:
      for part in datasets.split_sources(d[key]):
        datasets.parse_source(part)
    except ValueError as e:
      raise ConfigError(f"config.data.{key}: {e}") from None
  _require(t.batch_size >= 1, "train.batch_size", t.batch_size, "an integer >= 1")
  _require(t.num_steps >= 1, "train.num_steps", t.num_steps, "an integer >= 1")
  _require(t.learning_rate > 0, "train.learning_rate", t.learning_rate, "a number > 0")
  _require(t.lr_schedule in ("step", "cosine", "constant"), "train.lr_schedule", t.lr_schedule,
           "'step', 'cosine' or 'constant'")
  _require(t.lr_decay_steps >= 1, "train.lr_decay_steps", t.lr_decay_steps, "an integer >= 1")
  _require(0 < t.lr_decay_factor <= 1, "train.lr_decay_factor", t.lr_decay_factor, "a number in (0, 1]")
  _require(t.warmup_steps >= 0, "train.warmup_steps", t.warmup_steps, "an integer >= 0")
  _require(t.grad_clip >= 0, "train.grad_clip", t.grad_clip, "a norm >= 0 (0: off)")
  _require(t.num_devices >= 0, "train.num_devices", t.num_devices, "an integer >= 0 (0: all devices)")
  for key in ("log_every", "eval_every", "checkpoint_every"):
    _require(config[key] >= 1, key, config[key], "an integer >= 1 (steps)")
  _require(config.keep_checkpoints >= 1, "keep_checkpoints", config.keep_checkpoints, "an integer >= 1")
  for name, weight in config.loss.items():
    _require(name in PIXEL_LOSSES, f"loss.{name}", weight, "weights for " + ", ".join(PIXEL_LOSSES))
    _require(weight >= 0, f"loss.{name}", weight, "a weight >= 0")
  _require(any(w > 0 for w in config.loss.values()), "loss", config.loss.to_dict(),
           "at least one loss weight > 0")
  if num_devices is not None:
    if process_count > 1 and t.num_devices not in (0, num_devices):
      raise ConfigError(f"config.train.num_devices={t.num_devices}: multi-process runs use all "
                        f"{num_devices} devices; set 0")
    n = t.num_devices or num_devices
    _require(n <= num_devices, "train.num_devices", t.num_devices, f"at most the {num_devices} devices present")
    _require(t.batch_size % n == 0, "train.batch_size", t.batch_size,
             f"a multiple of the {n} devices in the mesh (e.g. {max(n, t.batch_size // n * n)})")


# Keys whose change makes a checkpoint a different model: resuming across them is refused.
IDENTITY_KEYS = ("model.scale", "model.num_blocks", "model.num_layers", "model.growth", "model.features",
                 "model.channels")


def _get(flat: dict, key: str):
  node = flat
  for part in key.split("."):
    node = node[part]
  return node


def resume_conflicts(saved: dict, config: ml_collections.ConfigDict) -> list[str]:
  """Human-readable differences in IDENTITY_KEYS between a saved config (dict) and ``config``."""
  current = json.loads(config.to_json())
  out = []
  for key in IDENTITY_KEYS:
    try:
      old = _get(saved, key)
    except (KeyError, TypeError):
      continue
    if old != _get(current, key):
      out.append(f"{key}: workdir has {old!r}, config has {_get(current, key)!r}")
  return out
