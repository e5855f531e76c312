"""Orbax checkpoints of a run: save, keep the latest K plus the best by validation PSNR, restore, resume.

Layout: ``WORKDIR/checkpoints/<step>/{state,meta}``. ``state`` is the TrainState pytree; ``meta`` is JSON
(the config's model/scale and the validation metrics at that step). Orbax writes each step into a temporary
directory and renames it when complete, so an interrupted save never shows up as a checkpoint; restore takes
the latest complete one.

Stopping: in a single-process run, SIGTERM (a scheduler's preemption) and SIGINT (Ctrl-C) are caught by the
trainer's Checkpointer: the current step finishes, a checkpoint is saved, and ``maybe_save`` answers "stop"; a
second signal acts at once. Multi-process runs get SIGTERM through JAX's distributed preemption sync (Orbax's
``reached_preemption``), so that every process saves the same step.
"""

from __future__ import annotations

import dataclasses
import logging as py_logging
import os
import shutil
import signal
import threading
from typing import Any, Callable

import jax
import orbax.checkpoint as ocp
from absl import logging as absl_logging
from orbax.checkpoint.checkpoint_managers import preservation_policy as pp

from sr_jax.errors import UserError

# Metrics that can pick the best checkpoint, saved as "val_<name>" with each validation's checkpoint, and how
# each ranks checkpoints: a score where higher is better.
RANKING = {"psnr": lambda m: m["val_psnr"], "lpips": lambda m: -m["val_lpips"]}
TMP_MARKER = ".orbax-checkpoint-tmp"


class CheckpointSaveError(UserError, OSError):
  """A save failed (disk full, permissions); earlier checkpoints are intact and the message lists them."""


class Checkpointer:
  """The run's checkpoint manager; a context manager that waits for pending saves on exit.

  The training loop only asks ``maybe_save(step, ...)``: it saves every ``save_every`` steps, with every
  validation's metrics, at the last step and when preemption is signalled, and answers whether to stop.
  """

  def __init__(self, workdir: str, *, keep: int = 3, save_every: int = 0, async_save: bool = True,
               read_only: bool = False, handle_signals: bool = False, best_metric: str = "psnr"):
    """``read_only``: for readers (evaluation, upscaling) of a workdir a trainer may be writing: creates and
    deletes nothing. ``handle_signals``: the trainer's, see the module docstring."""
    self.save_every = save_every
    self._rank = RANKING[best_metric]
    self._metric_key = f"val_{best_metric}"
    self.stop_signal: str | None = None
    self._previous_handlers: dict[int, Any] = {}
    self.directory = os.path.join(os.path.abspath(workdir), "checkpoints")
    policy = pp.AnyPreservationPolicy([
        pp.LatestN(n=max(1, keep)),
        pp.BestN(get_metric_fn=self._rank, reverse=False, n=1,
                 keep_checkpoints_without_metrics=False),
    ])
    if not read_only:
      self._remove_partial_saves()
    # best_fn makes Orbax write each save's metrics to disk, so "best" survives restarts (the preservation policy
    # and best_step read them back); which checkpoints are kept is decided by the policy alone.
    options = ocp.CheckpointManagerOptions(create=not read_only, read_only=read_only, preservation_policy=policy,
                                           best_fn=self._rank, best_mode="max",
                                           enable_async_checkpointing=async_save and not read_only)
    self.manager = ocp.CheckpointManager(
        self.directory, options=options,
        item_handlers={"state": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()})
    if handle_signals and jax.process_count() == 1 and threading.current_thread() is threading.main_thread():
      for sig in (signal.SIGTERM, signal.SIGINT):
        self._previous_handlers[sig] = signal.signal(sig, self._on_signal)

  def _remove_partial_saves(self) -> None:
    """A save cut short by a crash leaves a '<step>.orbax-checkpoint-tmp*' folder: never a checkpoint, removed
    here, synchronously, by the trainer that holds the workdir's lock (readers never delete anything)."""
    if os.path.isdir(self.directory):
      for name in os.listdir(self.directory):
        if TMP_MARKER in name:
          absl_logging.info("Removing the partial save %s", name)
          shutil.rmtree(os.path.join(self.directory, name), ignore_errors=True)

  def _on_signal(self, signum: int, frame) -> None:
    del frame
    self.stop_signal = signal.Signals(signum).name
    self._restore_handlers()  # A second signal acts at once.
    absl_logging.warning("%s received: the run saves a checkpoint after the current step and exits (send it "
                         "again to stop at once, without saving).", self.stop_signal)

  def _restore_handlers(self) -> None:
    for sig, handler in self._previous_handlers.items():
      signal.signal(sig, handler)
    self._previous_handlers = {}

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self.manager.all_steps())

  def best_step(self) -> int | None:
    """The step with the best validation metric among the kept checkpoints (latest if none has one)."""
    scored = [(self._rank(m), s) for s in self.all_steps()
              if (m := self.manager.metrics(s)) and self._metric_key in m]
    return max(scored)[1] if scored else self.latest_step()

  def maybe_save(self, step: int, state: Any, meta: dict, *, last: bool, metrics: dict | None = None,
                 before_save: Callable[[], None] | None = None) -> bool:
    """Saves when it is time (interval, validation metrics, last step, preemption); True means stop now.

    ``before_save`` runs first when a save is due (the loop's NaN check: a bad state is never saved).
    """
    preempted = self.reached_preemption(step) or self.stop_signal is not None
    if last or preempted or metrics is not None or (self.save_every and step % self.save_every == 0):
      if before_save is not None:
        before_save()
      self.save(step, state, meta, metrics=metrics)
    return preempted

  def __enter__(self) -> "Checkpointer":
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  def save(self, step: int, state: Any, meta: dict, metrics: dict | None = None) -> None:
    try:
      self.manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                      meta=ocp.args.JsonSave(meta)),
                        metrics=metrics, force=True)
    except OSError as e:
      raise self._save_error(step, e) from e

  def _save_error(self, step: int, e: OSError) -> CheckpointSaveError:
    kept = sorted(s for s in self.all_steps() if s != step)
    reason = "the disk is full" if e.errno == 28 else f"{type(e).__name__}: {e}"
    return CheckpointSaveError(e.errno, f"saving checkpoint {step} in {self.directory} failed: {reason}. Earlier "
                   f"checkpoints are intact ({kept or 'none'}); free space and re-run the same command to "
                   "resume from the latest of them.")

  def restore(self, step: int, abstract_state: Any) -> tuple[Any, dict]:
    absent = self._fields_absent_on_disk(step, abstract_state)
    target = abstract_state
    if absent:  # Written before those (unused, None) fields existed: restore the rest, keep them None.
      target = {f.name: getattr(abstract_state, f.name) for f in dataclasses.fields(abstract_state)
                if f.name not in absent}
    restored = self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(target), meta=ocp.args.JsonRestore()))
    state = restored["state"]
    if absent:
      state = dataclasses.replace(abstract_state, **state)
    return state, restored["meta"]

  def _fields_absent_on_disk(self, step: int, abstract_state: Any) -> set[str]:
    """Dataclass fields that are None in ``abstract_state`` and missing from the checkpoint's tree."""
    if not dataclasses.is_dataclass(abstract_state):
      return set()
    optional = {f.name for f in dataclasses.fields(abstract_state) if getattr(abstract_state, f.name) is None}
    if not optional:
      return set()
    tree = self.manager.item_metadata(step)["state"]
    saved = set(tree.keys()) if hasattr(tree, "keys") else set()
    return optional - saved if saved else set()

  def reached_preemption(self, step: int) -> bool:
    return self.manager.reached_preemption(step)

  def close(self) -> None:
    self._restore_handlers()
    try:
      self.manager.wait_until_finished()
    except OSError as e:  # An asynchronous save failed in the background.
      raise self._save_error(self.manager.latest_step() or -1, e) from e
    finally:
      self.manager.close()


def quiet_library_logs() -> None:
  """Drops Orbax's INFO chatter (dozens of lines per save) from the console; warnings still show."""

  def keep(record: py_logging.LogRecord) -> bool:
    return record.levelno >= py_logging.WARNING or "/orbax/" not in record.pathname.replace("\\", "/")

  absl_logging.get_absl_handler().addFilter(keep)
