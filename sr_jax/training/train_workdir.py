"""A training workdir as the trainer sees it: one trainer at a time, what it may be started in, the config it
records and the recipe changes a resume may make, the validation log, and the weights a run starts from.

The reading side of a workdir (its config, a model loaded for inference, a new workdir of imported weights) is
``run_dir``, which evaluation, upscaling and the hub use without importing any of this.
"""

from __future__ import annotations

import json
import os
import re
import time
from typing import Any

import jax
import ml_collections
import numpy as np
from absl import logging
from flax import nnx

from sr_jax import metrics
from sr_jax.core import locks
from sr_jax.core.errors import UserError
from sr_jax.training import config_lib
from sr_jax.workdir import checkpoint_io, checkpointing, run_dir


class WorkdirBusyError(UserError):
  """Another live trainer holds the workdir."""


class WorkdirLock:
  """One trainer per workdir: an exclusive lock on ``WORKDIR/.lock`` (``locks.Lock``; process 0 of a multi-host
  run). The kernel releases it when its process dies however it dies, so a killed run never blocks its own
  resume; the file says who holds it (PID, host, start time) for the message a second trainer gets.
  """

  def __init__(self, workdir: str):
    self.workdir, self._lock = workdir, locks.Lock(os.path.join(workdir, run_dir.LOCK_FILE), "trainer")

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



HISTORY_FILE = "config_history.json"  # Recipe changes a resumed run was allowed to make (--allow_config_change).
# How a run is run, monitored or found on disk, not what it learns: these may change when a run is resumed.
RUN_FIELDS = frozenset({
    "train.num_steps", "train.num_devices", "train.steps_per_dispatch", "log_every", "eval_every",
    "checkpoint_every", "keep_checkpoints", "profile_steps", "num_image_triplets", "val_metrics", "best_metric",
    "lpips_weights", "data.val", "data.max_val_images", "data.data_dir", "data.tfds_data_dir",
    "data.tfds_manual_dir", "data.degradation_workers", "data.cache_gb", "model.conv_impl", "train.state_layout"})


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
  if not os.path.exists(os.path.join(workdir, run_dir.CONFIG_FILE)):
    return {}
  saved = config_lib.saved_config(workdir)
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
    history = run_dir.read_json(path) if os.path.exists(path) else []
    history.append({"step": step, "time": time.strftime("%Y-%m-%d %H:%M:%S"), "changes": changes})
    run_dir.write_json(path, history)
  run_dir.write_json(os.path.join(workdir, run_dir.CONFIG_FILE), json.loads(config.to_json()))


class ValidationLog:
  """``validation.json``: ``{"scale", "history": [{"step", "wall_time_s", "sets": {set: metrics}}], "best"}``, and
  ``"start": {"init_from", "sets"}``: the same scores of the weights a run started from (train.init_from, e.g. a
  published model before fine-tuning), outside history and best (no checkpoint holds them).

  On resume the entries after the restored step are dropped (they will be redone); training wall time is
  carried across restarts (the report plots PSNR against it).
  """

  def __init__(self, workdir: str, scale: int, resume_step: int, best_metric: str = "psnr"):
    self.path = os.path.join(workdir, run_dir.VALIDATION_FILE)
    self.best_metric = best_metric
    self.data = {"scale": scale, "history": []}
    if os.path.exists(self.path):
      self.data = run_dir.read_json(self.path)
      self.data["history"] = [h for h in self.data["history"] if h["step"] <= resume_step]
    history = self.data["history"]
    self.wall_offset = history[-1].get("wall_time_s", 0.0) if history else 0.0

  def add_start(self, init_from: str, results: dict[str, dict]) -> None:
    self.data["start"] = {"init_from": init_from, "sets": results}
    if jax.process_index() == 0:
      run_dir.write_json(self.path, self.data)

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
      run_dir.write_json(self.path, self.data)



# What a workdir can hold before its run's first step (when config.json is written): the launcher's files, the
# trainer's lock, Orbax's still-empty checkpoints/ (checked apart), hidden temporary files and readers' views.
_BEFORE_RUN = re.compile(r"^(launch\.json|train\.log|\.lock|\.launch\.lock|checkpoints|\.reading-.*|"
                         r"\..+\.tmp\d+-[0-9a-f]{8})$")


def check_training_workdir(workdir: str) -> None:
  """The workdir rule for training: a new or empty folder (not one of imported weights), an earlier run (a config.json that sr_jax wrote, or
  numbered checkpoints), or a run that has not reached its first step (only the launcher's files, the lock and an
  empty checkpoints/). Anything else is a folder of the user's, whose config.json, validation.json or checkpoints/
  training would replace: refused."""
  if os.path.lexists(workdir) and not os.path.isdir(workdir):
    raise NotADirectoryError(f"--workdir {workdir} is a file, not a folder")
  if run_dir.read_source(workdir) is not None:
    raise run_dir.WorkdirNotNewError(
        f"--workdir {workdir} holds imported or interpolated weights ({run_dir.SOURCE_FILE}), not a training run "
        f"(its checkpoint has no optimiser state): train from them in a new --workdir with "
        f"--config.train.init_from={workdir}")
  if not os.path.isdir(workdir) or _is_run(workdir):
    return
  ckpts = os.path.join(workdir, "checkpoints")
  foreign = sorted(n for n in os.listdir(workdir) if not _BEFORE_RUN.match(n) or (
      n == "checkpoints" and (not os.path.isdir(ckpts) or any(checkpointing.TMP_MARKER not in c
                                                              for c in os.listdir(ckpts)))))
  if foreign:
    raise run_dir.WorkdirNotNewError(
        f"--workdir {workdir} holds {', '.join(foreign[:4])}{' ...' if len(foreign) > 4 else ''} and is not an "
        "sr_jax run; training writes config.json, validation.json and checkpoints/ into its workdir, so it starts "
        "only in a new or empty folder or resumes an earlier run: give another --workdir")


def _is_run(workdir: str) -> bool:
  if checkpoint_io.saved_steps(os.path.join(workdir, "checkpoints")):
    return True
  try:
    saved = run_dir.read_json(os.path.join(workdir, run_dir.CONFIG_FILE))
  except (OSError, ValueError):
    return False
  return isinstance(saved, dict) and isinstance(saved.get("model"), dict) and "name" in saved["model"]



def init_params_from(source: str, params: nnx.State) -> nnx.State:
  """Copies every parameter of the run at ``source`` (workdir or checkpoint) whose path and shape match."""
  workdir, step = run_dir.split_checkpoint_path(source)
  src = run_dir.load_run(workdir, step)
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
