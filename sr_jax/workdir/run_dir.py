"""A workdir as its readers see it: its config, a checkpoint loaded as a model, and new workdirs of weights.

Layout: ``WORKDIR/config.json`` (the run's full config), ``WORKDIR/validation.json`` (every validation),
``WORKDIR/checkpoints/<step>/`` (Orbax, see ``checkpointing``). A reader's config is the saved one with the
model section over the model registry's defaults (``reader_config``), so runs written before a model field existed
load with its default; the full config is ``config_lib.saved_config``. ``load_run`` restores
only the parameters a model needs (its EMA or raw weights) from an abstract tree the model registry builds, so
evaluation, upscaling, export and the hub read runs without the optimiser, the losses or the training loop; the
trainer's side of a workdir is ``train_workdir``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from typing import Any, NamedTuple

import jax
import ml_collections
import numpy as np
from absl import logging
from flax import nnx

from sr_jax.core import atomic, errors, locks
from sr_jax.core.errors import UserError
from sr_jax.models import registry
from sr_jax.workdir import checkpointing

CONFIG_FILE = "config.json"
VALIDATION_FILE = "validation.json"
LOCK_FILE = ".lock"


def trainer_holding(workdir: str) -> str | None:
  """The live trainer holding ``workdir`` (its PID, host and start), or None."""
  return locks.holder(os.path.join(workdir, LOCK_FILE))


def write_json(path: str, obj: Any) -> None:
  """Writes JSON atomically (``atomic.replace``): readers never see half a file."""
  atomic.write_text(path, json.dumps(obj, indent=1))


def read_json(path: str) -> Any:
  with open(path) as f:
    return json.load(f)


def overlay(config: ml_collections.ConfigDict, saved: dict) -> ml_collections.ConfigDict:
  """``saved`` (a config as JSON) written over ``config`` in place; keys ``config`` does not have are dropped."""

  def merge(node: ml_collections.ConfigDict, values: dict, prefix: str) -> None:
    for key, value in values.items():
      if key not in node:
        logging.info("Ignoring config key %s%s of a saved run (no longer used)", prefix, key)
      elif isinstance(node[key], ml_collections.ConfigDict) and isinstance(value, dict):
        merge(node[key], value, f"{prefix}{key}.")
      else:
        node[key] = value

  merge(config, saved, "")
  return config


def read_config_json(workdir: str) -> dict:
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(f"{workdir} is not a training workdir (no {CONFIG_FILE})")
  return read_json(path)


def reader_config(saved: dict) -> ml_collections.ConfigDict:
  """What a reader of a run needs of its config: the model section over the model registry's defaults, EMA or
  not (train.ema_decay, default 0) and the metric that picks 'best' (best_metric, default psnr); the other
  sections as saved. The full config, over every section's defaults, is ``config_lib.saved_config`` (the
  training side)."""
  config = ml_collections.ConfigDict({k: v for k, v in saved.items() if k != "model"})
  config.model = overlay(registry.default_config(), saved.get("model", {}))
  if "train" not in config:
    config.train = ml_collections.ConfigDict()
  if "ema_decay" not in config.train:
    config.train.ema_decay = 0.0
  if "best_metric" not in config:
    config.best_metric = "psnr"
  return config


def load_config(workdir: str) -> ml_collections.ConfigDict:
  """``reader_config`` of the run in ``workdir`` (its model, EMA, best metric; the rest as saved)."""
  return reader_config(read_config_json(workdir))


SOURCE_FILE = "source.json"  # What a workdir of imported or interpolated weights was written from.


class WorkdirNotNewError(UserError, FileExistsError):
  """A command that writes a new workdir was given a folder that already holds something."""


def check_new_workdir(workdir: str) -> None:
  """The workdir rule of every command that writes a new workdir (import, fetch, interpolate): ``workdir`` must not
  exist or be an empty folder. Whatever is already in a folder the user named is the user's: it is refused,
  never written into, replaced or deleted."""
  if os.path.lexists(workdir) and not os.path.isdir(workdir):
    raise NotADirectoryError(f"--workdir {workdir} is a file, not a folder")
  if not os.path.isdir(workdir):
    return
  names = sorted(os.listdir(workdir))
  if not names:
    return
  shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
  what = "already holds checkpoints" if "checkpoints" in names else "is not empty"
  raise WorkdirNotNewError(f"--workdir {workdir} {what} ({shown}); a new workdir is written only into a new or "
                           "empty folder, so that nothing already there is replaced or deleted: give another "
                           "--workdir")


def write_params_workdir(workdir: str, config: ml_collections.ConfigDict, params: nnx.State, metadata: dict,
                         what: str) -> None:
  """A new workdir holding ``config.json``, ``source.json`` (``metadata``) and a step-0 checkpoint of ``params``
  alone (no optimiser state, EMA or discriminator: ``{"step", "params", "first_bad_step"}``): the workdir of
  imported or interpolated weights, which evaluate, upscale, export and train.init_from read (training from it is
  ``train.init_from``, in a new workdir).

  ``workdir`` follows ``check_new_workdir``. The workdir is built whole in a hidden folder beside it
  (``atomic.temp_dir``) and renamed into place when complete (over an empty folder the user made), so a failure
  (a full disk, Ctrl-C) removes only that hidden folder, nothing else, and the same command can simply be run
  again; ``kill -9`` leaves the hidden folder, which the next write to that workdir removes. ``what`` names the
  operation in the messages."""
  check_new_workdir(workdir)
  target = os.path.abspath(workdir)
  parent = os.path.dirname(target)
  os.makedirs(parent, exist_ok=True)
  atomic.remove_stale_dirs(parent, os.path.basename(target))
  tmp = atomic.temp_dir(target)
  try:
    write_json(os.path.join(tmp, CONFIG_FILE), json.loads(config.to_json()))
    write_json(os.path.join(tmp, SOURCE_FILE), metadata)
    with checkpointing.Checkpointer(tmp, async_save=False) as ckpt:
      ckpt.save(0, {"step": np.zeros((), np.int32), "params": params,
                    "first_bad_step": np.full((), -1, np.int32)}, metadata)
    try:
      os.rename(tmp, target)  # Atomic; replaces only a missing or empty folder.
    except OSError as e:
      if os.path.isdir(target) and os.listdir(target):
        raise WorkdirNotNewError(f"{what} failed: {workdir} was filled by another process meanwhile; it was left "
                                 "as that process wrote it and nothing of this command was kept") from e
      raise
  except BaseException as e:
    shutil.rmtree(tmp, ignore_errors=True)
    if errors.is_disk_full(e):
      raise errors.DiskFullError(f"{what} failed: the disk is full. Nothing was written to {workdir}; free space "
                                 "and run the same command again") from e
    raise


def read_source(workdir: str) -> dict | None:
  """``source.json`` of a workdir written by ``write_params_workdir`` (None for a training run or an older one)."""
  try:
    return read_json(os.path.join(workdir, SOURCE_FILE))
  except (OSError, ValueError):
    return None


def split_checkpoint_path(path: str) -> tuple[str, str]:
  """'WORKDIR/checkpoints/STEP' -> (WORKDIR, STEP); any other path is a workdir -> (path, 'best')."""
  path = os.path.normpath(path)
  parent = os.path.dirname(path)
  if os.path.basename(parent) == "checkpoints" and os.path.basename(path).isdigit():
    return os.path.dirname(parent), os.path.basename(path)
  return path, "best"


class Run(NamedTuple):
  """A trained model read from a workdir (also unpacks as ``config, graphdef, params, step``)."""
  config: ml_collections.ConfigDict
  graphdef: nnx.GraphDef
  params: nnx.State
  step: int


class StepNotFoundError(UserError, ValueError):
  """--step names no checkpoint of the workdir."""


def _pick_step(ckpt: checkpointing.Checkpointer, step: int | str) -> int:
  steps = ckpt.all_steps()
  workdir = os.path.dirname(ckpt.directory)
  if not str(step).isdigit() and step not in ("best", "latest"):
    raise StepNotFoundError(f"--step={step}: give 'best', 'latest' or a step number")
  if not steps:
    raise FileNotFoundError(f"{workdir} has no checkpoints")
  if step == "latest":
    return max(steps)
  if step == "best":
    return ckpt.best_step()
  if int(step) not in steps:
    raise StepNotFoundError(f"{workdir} has no checkpoint at step {step}; available: {sorted(steps)} (or 'best', "
                            "'latest')")
  return int(step)


def _restore(workdir: str, config, step: int | str, abstract) -> tuple[Any, int]:
  """Restores ``step`` ('best', 'latest' or a number).

  A live trainer may prune the picked checkpoint between listing and reading it (it keeps only the latest K),
  or, keeping one, list none for a moment: 'best'/'latest' then list again and retry (an empty checkpoints
  folder is reported after 2 s of retries). An unreadable 'best'/'latest' falls back to the newest readable
  step, with a warning naming the step passed over and why; a numbered step that is unreadable is an error
  naming it."""
  numbered, empty = str(step).isdigit(), None
  for _ in range(10):
    with checkpointing.Checkpointer(workdir, keep=10**6, async_save=False, read_only=True,
                                    best_metric=config.best_metric) as ckpt:
      try:
        picked = _pick_step(ckpt, step)
      except FileNotFoundError as e:  # A trainer keeping one checkpoint is between deleting it and the next.
        if not os.path.isdir(ckpt.directory):
          raise
        empty, picked = e, None
      if picked is not None:
        order = [picked] + ([] if numbered else sorted((s for s in ckpt.all_steps() if s != picked), reverse=True))
        try:
          if numbered:
            return ckpt.restore(picked, abstract)[0], picked
          state, got, _ = ckpt.restore_newest(abstract, order)
          return state, got
        except checkpointing.CheckpointGoneError:
          if numbered:
            raise
    time.sleep(0.2)  # Pruned while being read, or between a prune and the next save: list them again.
  if empty is not None:
    raise empty
  raise checkpointing.CheckpointGoneError(f"the checkpoints of {workdir} kept being deleted while being read; "
                                          "try again")


def load_run(workdir: str, step: int | str = "best", *, bf16: bool = False, raw_weights: bool = False) -> Run:
  """The model of a workdir at ``step``: 'best' (by the run's best_metric), 'latest' or a step number; its EMA
  weights when the run kept them (config.train.ema_decay > 0) unless ``raw_weights``. Only those parameters are
  read from the checkpoint (a partial restore into ``registry.abstract_params``)."""
  config = load_config(workdir)
  if bf16:
    config.model.dtype = "bfloat16"
  field = "ema_params" if config.train.ema_decay > 0 and not raw_weights else "params"
  abstract = {field: registry.abstract_params(config.model, jax.sharding.SingleDeviceSharding(jax.devices()[0]))}
  tree, step = _restore(workdir, config, step, abstract)
  if field == "ema_params":
    logging.info("%s step %d: using its EMA weights", workdir, step)
  return Run(config, registry.generator_graphdef(config.model), tree[field], step)
