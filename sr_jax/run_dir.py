"""A training workdir: its config, its validation log, its checkpoints as a model, and where a run starts from.

Layout: ``WORKDIR/config.json`` (the run's full config), ``WORKDIR/validation.json`` (every validation, see
``ValidationLog``), ``WORKDIR/checkpoints/<step>/`` (Orbax, see ``checkpointing``). A saved config is read by
overlaying it on ``configs/default.py``, so runs written before a config key existed load with its default.
Nothing here imports the training loop: evaluation, upscaling and the report read runs through this module.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from typing import Any, NamedTuple

import jax
import ml_collections
import numpy as np
from absl import logging
from flax import nnx

from sr_jax import atomic, checkpoint_io, checkpointing, config_lib, errors, locks, metrics, state as state_lib
from sr_jax.configs import default
from sr_jax.errors import UserError
from sr_jax.models import registry

CONFIG_FILE = "config.json"
VALIDATION_FILE = "validation.json"
LOCK_FILE = ".lock"


class WorkdirBusyError(UserError):
  """Another live trainer holds the workdir."""


class WorkdirLock:
  """One trainer per workdir: an exclusive lock on ``WORKDIR/.lock`` (``locks.Lock``; process 0 of a multi-host
  run). The kernel releases it when its process dies however it dies, so a killed run never blocks its own
  resume; the file says who holds it (PID, host, start time) for the message a second trainer gets.
  """

  def __init__(self, workdir: str):
    self.workdir, self._lock = workdir, locks.Lock(os.path.join(workdir, LOCK_FILE), "trainer")

  def __enter__(self) -> "WorkdirLock":
    if jax.process_index() != 0:
      return self
    holder = self._lock.acquire()
    if holder:
      raise WorkdirBusyError(f"workdir {self.workdir} is in use by {holder}; two trainers on one workdir would "
                             "overwrite each other's checkpoints. Wait for it, stop it, or use another --workdir.")
    return self

  def __exit__(self, *exc) -> None:
    self._lock.release()


def trainer_holding(workdir: str) -> str | None:
  """The live trainer holding ``workdir`` (its PID, host and start), or None."""
  return locks.holder(os.path.join(workdir, LOCK_FILE))


def write_json(path: str, obj: Any) -> None:
  """Writes JSON atomically (``atomic.replace``): readers never see half a file."""
  atomic.write_text(path, json.dumps(obj, indent=1))


def read_json(path: str) -> Any:
  with open(path) as f:
    return json.load(f)


def overlay_on_defaults(saved: dict) -> ml_collections.ConfigDict:
  """``saved`` (a config as JSON) over the default config; keys the defaults no longer have are dropped."""
  config = default.get_config()

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


def load_config(workdir: str) -> ml_collections.ConfigDict:
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(f"{workdir} is not a training workdir (no {CONFIG_FILE})")
  return overlay_on_defaults(read_json(path))


HISTORY_FILE = "config_history.json"  # Recipe changes a resumed run was allowed to make (--allow_config_change).
# How a run is run, monitored or found on disk, not what it learns: these may change when a run is resumed.
RUN_FIELDS = frozenset({
    "train.num_steps", "train.num_devices", "train.steps_per_dispatch", "log_every", "eval_every",
    "checkpoint_every", "keep_checkpoints", "profile_steps", "num_image_triplets", "val_metrics", "best_metric",
    "lpips_weights", "data.val", "data.max_val_images", "data.data_dir", "data.tfds_data_dir",
    "data.tfds_manual_dir", "data.degradation_workers", "data.cache_gb", "model.conv_impl"})


def _flat(tree: dict, prefix: str = "") -> dict[str, Any]:
  out = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      out.update(_flat(value, f"{prefix}{key}."))
    else:
      out[f"{prefix}{key}"] = value
  return out


def recipe_changes(saved: ml_collections.ConfigDict, config: ml_collections.ConfigDict) -> dict[str, list]:
  """{key: [saved value, new value]} of every field that differs, but ``RUN_FIELDS`` (train.num_steps counts
  under a cosine schedule, whose decay it sets)."""
  old, new = (_flat(json.loads(c.to_json())) for c in (saved, config))
  free = RUN_FIELDS - ({"train.num_steps"} if "cosine" in (old.get("train.lr_schedule"), new.get("train.lr_schedule"))
                       else set())
  return {k: [old.get(k), new.get(k)] for k in sorted(set(old) | set(new))
          if old.get(k) != new.get(k) and k not in free}


def check_config(config: ml_collections.ConfigDict, workdir: str, allow_change: bool = False) -> dict[str, list]:
  """Before resuming ``workdir``: refuses a run of another model (architecture, scale, GAN or not), and a change
  of recipe (loss, data, batch, optimiser, ...: any field but ``RUN_FIELDS``) unless ``allow_change``; returns the
  recipe changes (empty when the config is the run's, or the workdir has no config.json)."""
  if not os.path.exists(os.path.join(workdir, CONFIG_FILE)):
    return {}
  saved = load_config(workdir)
  conflicts = config_lib.resume_conflicts(saved, config)
  if conflicts:
    raise config_lib.ConfigError(f"workdir {workdir} holds a run of a different model; refusing to resume it ("
                                 + "; ".join(conflicts) + "). Use a new --workdir.")
  changes = recipe_changes(saved, config)
  if changes and not allow_change:
    listed = "; ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in list(changes.items())[:8])
    more = f" and {len(changes) - 8} more" if len(changes) > 8 else ""
    raise config_lib.ConfigError(
        f"workdir {workdir} was trained with another recipe than this config ({listed}{more}); resuming would "
        "continue it with this one while its checkpoints came from the other. Resume with the workdir's own config "
        "(its config.json), use a new --workdir (train.init_from can start from this run), or pass "
        f"--allow_config_change to go on with the change, recorded in {HISTORY_FILE}.")
  return changes


def record_config(config: ml_collections.ConfigDict, workdir: str, changes: dict[str, list] | None = None,
                  step: int = 0) -> None:
  """Writes ``config.json`` (process 0), once training is about to start; recipe ``changes`` a resume at ``step``
  was allowed to make are appended to ``config_history.json`` first, so config.json (the config from then on)
  never hides what the earlier steps were trained with."""
  if jax.process_index() != 0:
    return
  if changes:
    path = os.path.join(workdir, HISTORY_FILE)
    history = read_json(path) if os.path.exists(path) else []
    history.append({"step": step, "time": time.strftime("%Y-%m-%d %H:%M:%S"), "changes": changes})
    write_json(path, history)
  write_json(os.path.join(workdir, CONFIG_FILE), json.loads(config.to_json()))


class ValidationLog:
  """``validation.json``: ``{"scale", "history": [{"step", "wall_time_s", "sets": {set: metrics}}], "best"}``, and
  ``"start": {"init_from", "sets"}``: the same scores of the weights a run started from (train.init_from, e.g. a
  published model before fine-tuning), outside history and best (no checkpoint holds them).

  On resume the entries after the restored step are dropped (they will be redone); training wall time is
  carried across restarts (the report plots PSNR against it).
  """

  def __init__(self, workdir: str, scale: int, resume_step: int, best_metric: str = "psnr"):
    self.path = os.path.join(workdir, VALIDATION_FILE)
    self.best_metric = best_metric
    self.data = {"scale": scale, "history": []}
    if os.path.exists(self.path):
      self.data = read_json(self.path)
      self.data["history"] = [h for h in self.data["history"] if h["step"] <= resume_step]
    history = self.data["history"]
    self.wall_offset = history[-1].get("wall_time_s", 0.0) if history else 0.0

  def add_start(self, init_from: str, results: dict[str, dict]) -> None:
    self.data["start"] = {"init_from": init_from, "sets": results}
    if jax.process_index() == 0:
      write_json(self.path, self.data)

  def add(self, step: int, wall_time_s: float, results: dict[str, dict]) -> None:
    """Records one validation; the first set's ``best_metric`` (PSNR up, LPIPS down) decides the best step."""
    self.data["history"].append({"step": step, "wall_time_s": round(self.wall_offset + wall_time_s, 1),
                                 "sets": results})
    name, first = next(iter(results.items()))
    m, best = self.best_metric, self.data.get("best")
    better = best is None or m not in best or metrics.get(m).better(first[m], best[m])
    if better:
      self.data["best"] = {"step": step, m: first[m], "set": name, "metric": m}
    if jax.process_index() == 0:
      write_json(self.path, self.data)


SOURCE_FILE = "source.json"  # What a workdir of imported or interpolated weights was written from.
# What a workdir can hold before its run's first step (when config.json is written): the launcher's files, the
# trainer's lock, Orbax's still-empty checkpoints/ (checked apart), hidden temporary files and readers' views.
_BEFORE_RUN = re.compile(r"^(launch\.json|train\.log|\.lock|\.launch\.lock|checkpoints|\.reading-.*|"
                         r"\..+\.tmp\d+-[0-9a-f]{8})$")


def check_training_workdir(workdir: str) -> None:
  """The workdir rule for training: a new or empty folder, an earlier run (a config.json that sr_jax wrote, or
  numbered checkpoints), or a run that has not reached its first step (only the launcher's files, the lock and an
  empty checkpoints/). Anything else is a folder of the user's, whose config.json, validation.json or checkpoints/
  training would replace: refused."""
  if os.path.lexists(workdir) and not os.path.isdir(workdir):
    raise NotADirectoryError(f"--workdir {workdir} is a file, not a folder")
  if not os.path.isdir(workdir) or _is_run(workdir):
    return
  ckpts = os.path.join(workdir, "checkpoints")
  foreign = sorted(n for n in os.listdir(workdir) if not _BEFORE_RUN.match(n) or (
      n == "checkpoints" and (not os.path.isdir(ckpts) or any(checkpointing.TMP_MARKER not in c
                                                              for c in os.listdir(ckpts)))))
  if foreign:
    raise WorkdirNotNewError(
        f"--workdir {workdir} holds {', '.join(foreign[:4])}{' ...' if len(foreign) > 4 else ''} and is not an "
        "sr_jax run; training writes config.json, validation.json and checkpoints/ into its workdir, so it starts "
        "only in a new or empty folder or resumes an earlier run: give another --workdir")


def _is_run(workdir: str) -> bool:
  if checkpoint_io.saved_steps(os.path.join(workdir, "checkpoints")):
    return True
  try:
    saved = read_json(os.path.join(workdir, CONFIG_FILE))
  except (OSError, ValueError):
    return False
  return isinstance(saved, dict) and isinstance(saved.get("model"), dict) and "name" in saved["model"]


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
  (no EMA, no discriminator): the workdir of imported or interpolated weights, which evaluate, upscale, export and
  train.init_from read.

  ``workdir`` follows ``check_new_workdir``. The workdir is built whole in a hidden folder beside it
  (``atomic.temp_dir``) and renamed into place when complete (over an empty folder the user made), so a failure
  (a full disk, Ctrl-C) removes only that hidden folder, nothing else, and the same command can simply be run
  again; ``kill -9`` leaves the hidden folder, which the next write to that workdir removes. ``what`` names the
  operation in the messages."""
  check_new_workdir(workdir)
  opt = state_lib.Optimizers.from_config(config)
  target = os.path.abspath(workdir)
  parent = os.path.dirname(target)
  os.makedirs(parent, exist_ok=True)
  atomic.remove_stale_dirs(parent, os.path.basename(target))
  tmp = atomic.temp_dir(target)
  try:
    write_json(os.path.join(tmp, CONFIG_FILE), json.loads(config.to_json()))
    write_json(os.path.join(tmp, SOURCE_FILE), metadata)
    with checkpointing.Checkpointer(tmp, async_save=False) as ckpt:
      ckpt.save(0, state_lib.create_state(params, opt.tx), metadata)
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
  weights when the run kept them (config.train.ema_decay > 0) unless ``raw_weights``."""
  config = load_config(workdir)
  if bf16:
    config.model.dtype = "bfloat16"
  abstract = state_lib.abstract_state(config, jax.sharding.SingleDeviceSharding(jax.devices()[0]))
  state, step = _restore(workdir, config, step, abstract)
  params = state.params if raw_weights else state.eval_params()
  if state.ema_params is not None:
    logging.info("%s step %d: using its %s weights", workdir, step, "raw" if raw_weights else "EMA")
  return Run(config, registry.generator_graphdef(config.model), params, step)


def init_params_from(source: str, params: nnx.State) -> nnx.State:
  """Copies every parameter of the run at ``source`` (workdir or checkpoint) whose path and shape match."""
  workdir, step = split_checkpoint_path(source)
  src = load_run(workdir, step)
  src_flat = dict(nnx.to_flat_state(src.params))
  copied, skipped, out = 0, [], []
  for path, var in nnx.to_flat_state(params):
    other = src_flat.get(path)
    if other is not None and other.shape == var.shape:
      out.append((path, var.replace(np.asarray(other[...]))))
      copied += 1
    else:
      out.append((path, var))
      skipped.append("/".join(map(str, path)))
  if not copied:
    raise config_lib.ConfigError(f"config.train.init_from={source!r}: no parameter matches this model")
  logging.info("Initialised %d parameters from %s (step %s); kept random: %s", copied, workdir, src.step,
               ", ".join(skipped) or "none")
  return nnx.from_flat_state(out)
