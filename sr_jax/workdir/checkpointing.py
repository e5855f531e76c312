"""Orbax checkpoints of a run: save, keep the latest K plus the best by validation PSNR, restore, resume.

Layout: ``WORKDIR/checkpoints/<step>/{state,meta}``. ``state`` is the TrainState pytree; ``meta`` is JSON
(the config's model/scale and the validation metrics at that step). Orbax writes each step into a temporary
directory and renames it when complete, so an interrupted save never shows up as a checkpoint; restore takes
the latest complete one.

Damage: a checkpoint that exists but cannot be read (a truncated or garbage ``manifest.ocdbt``, unreadable
``meta``) is named with its step and the reason (``CheckpointUnreadableError``), told apart from a checkpoint of
another model (``CheckpointMismatchError``) and from one deleted while being read by a trainer's pruning
(``CheckpointGoneError``; readers then list again). A step whose ``metrics`` file is garbage stays usable and
is left out of "best". ``restore_newest`` is what resuming and the readers of 'best'/'latest' use: the newest
readable step of those asked for, with the unreadable ones it passed over. A full disk, whichever library
reports it, is a ``CheckpointSaveError`` saying so.

Stopping: in a single-process run, SIGTERM (a scheduler's preemption) and SIGINT (Ctrl-C) are caught by the
trainer's Checkpointer (``core.stop_signals``: heard at once, even while the loop waits in XLA): the step in
progress finishes, a checkpoint is saved, and ``maybe_save`` answers "stop"; a second signal ends the process at
once without saving, naming the checkpoints kept. Multi-process runs get SIGTERM through JAX's distributed
preemption sync (Orbax's ``reached_preemption``), so that every process saves the same step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
import time
from typing import Any, Callable, Iterable, Iterator

import jax
import orbax.checkpoint as ocp
from absl import logging as absl_logging
from orbax.checkpoint.checkpoint_managers import preservation_policy as pp

from sr_jax import metrics
from sr_jax.core import errors, stop_signals
from sr_jax.core.errors import UserError
from sr_jax.workdir import checkpoint_io
from sr_jax.workdir.checkpoint_io import (CheckpointGoneError, CheckpointMismatchError,  # noqa: F401
                                          CheckpointReadError, CheckpointUnreadableError, saved_steps)  # noqa: F401  (this module's interface)

# Metrics that can pick the best checkpoint (metrics.RANKABLE) are saved as "val_<name>" with each validation's
# checkpoint; the registry says which way is better.
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
    metric = metrics.get(best_metric)
    self._rank = lambda m: metric.rank(m[f"val_{best_metric}"])
    self._metric_key = f"val_{best_metric}"
    self.stop_signal: str | None = None
    self.directory = os.path.join(os.path.abspath(workdir), "checkpoints")
    policy = pp.AnyPreservationPolicy([
        pp.LatestN(n=max(1, keep)),
        pp.BestN(get_metric_fn=self._rank, reverse=False, n=1,
                 keep_checkpoints_without_metrics=False),
    ])
    checkpoint_io.drop_closed_loop_noise()
    checkpoint_io.remove_dead_readers_views(os.path.dirname(self.directory))
    if not read_only:
      self._remove_partial_saves()
    # best_fn makes Orbax write each save's metrics to disk, so "best" survives restarts (the preservation policy
    # and best_step read them back); which checkpoints are kept is decided by the policy alone.
    options = ocp.CheckpointManagerOptions(create=not read_only, read_only=read_only, preservation_policy=policy,
                                           best_fn=self._rank, best_mode="max",
                                           enable_async_checkpointing=async_save and not read_only)
    self.read_only = read_only
    self._options = options
    self.manager = self._new_manager(self.directory)
    self._signals = None
    if handle_signals and jax.process_count() == 1:
      self._signals = stop_signals.StopSignals(self._on_signal, self._stopped_at_once).__enter__()

  def _new_manager(self, directory: str) -> "checkpoint_io.Manager":
    """Orbax's manager; a reader's is retried when a step it is listing is deleted under it (a live trainer)."""
    for attempt in range(20):
      try:
        state = ocp.PyTreeCheckpointHandler() if self.read_only else ocp.StandardCheckpointHandler()  # Same files;
        # readers restore parts of the tree (PyTreeRestore's partial_restore), which the standard handler cannot.
        return checkpoint_io.Manager(directory, options=self._options,
                                     item_handlers={"state": state, "meta": ocp.JsonCheckpointHandler()})
      except FileNotFoundError:
        if not self.read_only or attempt == 19:
          raise
        time.sleep(0.05)
    raise AssertionError("unreachable")

  @contextlib.contextmanager
  def _pinned(self, step: int) -> Iterator["checkpoint_io.Manager"]:
    """A reader's manager over a private copy of ``step`` made of hard links, so that the files stay readable when
    a live trainer deletes the checkpoint during the (slow) restore; the race is narrowed to the linking (a few
    ms), after which a failure is diagnosed against the real folder. Where no hard links can be made (a read-only
    workdir, a filesystem without them) the checkpoint is read in place."""
    if not self.read_only:
      yield self.manager
      return
    src = os.path.join(self.directory, str(step))
    try:
      view = tempfile.mkdtemp(prefix=f"{checkpoint_io.READING}{os.getpid()}-", dir=os.path.dirname(self.directory))
    except OSError:
      yield self.manager
      return
    try:
      try:
        checkpoint_io.link_tree(src, os.path.join(view, "checkpoints", str(step)))
      except FileNotFoundError as e:
        raise CheckpointGoneError(f"checkpoint {src} was deleted while being read (a trainer running in this "
                                  "workdir prunes old checkpoints)") from e
      except OSError:
        yield self.manager
        return
      manager = self._new_manager(os.path.join(view, "checkpoints"))
      try:
        yield manager
      finally:
        manager.close()
    finally:
      shutil.rmtree(view, ignore_errors=True)

  def _remove_partial_saves(self) -> None:
    """A save cut short by a crash leaves a '<step>.orbax-checkpoint-tmp*' folder: never a checkpoint, removed
    here, synchronously, by the trainer that holds the workdir's lock (readers never delete anything)."""
    if os.path.isdir(self.directory):
      for name in os.listdir(self.directory):
        if TMP_MARKER in name:
          absl_logging.info("Removing the partial save %s", name)
          shutil.rmtree(os.path.join(self.directory, name), ignore_errors=True)

  def _on_signal(self, name: str) -> None:
    self.stop_signal = name
    absl_logging.warning("%s received: the run finishes the step in progress, saves a checkpoint and exits (send "
                         "it again to stop at once, without saving).", name)

  def _stopped_at_once(self, name: str) -> str:
    kept = checkpoint_io.saved_steps(self.directory)
    return (f"{name} again: stopped at once, without saving. Checkpoints in {self.directory}: "
            f"{', '.join(map(str, kept)) or 'none'}" + ("; run the same command to resume from the latest."
                                                         if kept else "."))

  def _stop_listening(self) -> None:
    if self._signals is not None:
      self._signals.__exit__(None, None, None)
      self._signals = None

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

    ``state``: the pytree to save, or a function returning it (called only when a save is due: the trainer's
    state is unpacked from its buffers only then). ``before_save`` runs first when a save is due (the loop's NaN
    check: a bad state is never saved).
    """
    preempted = self.reached_preemption(step) or self.stop_signal is not None
    if last or preempted or metrics is not None or (self.save_every and step % self.save_every == 0):
      if before_save is not None:
        before_save()
      self.save(step, state() if callable(state) else state, meta, metrics=metrics)
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
    except Exception as e:  # Orbax reports a full disk as a ValueError (RESOURCE_EXHAUSTED) or an OSError.
      if isinstance(e, OSError) or errors.is_disk_full(e):
        raise self._save_error(step, e) from e
      raise

  def _save_error(self, step: int, e: BaseException) -> CheckpointSaveError:
    with contextlib.suppress(Exception):  # Earlier saves still in flight: finished (or failed) first.
      self.manager.wait_until_finished()
    kept = checkpoint_io.saved_steps(self.directory, exclude=step)
    reason = "the disk is full" if errors.is_disk_full(e) else f"{type(e).__name__}: {checkpoint_io.short(e)}"
    err = CheckpointSaveError(f"saving checkpoint {step} in {self.directory} failed: {reason}. Earlier "
                              f"checkpoints are intact ({kept or 'none'}); free space and re-run the same command "
                              "to resume from the latest of them.")
    err.errno = 28 if errors.is_disk_full(e) else getattr(e, "errno", None)
    return err

  def restore(self, step: int, abstract_state: Any) -> tuple[Any, dict]:
    """(state, meta) of ``step``: the whole TrainState of ``abstract_state``, or, for a reader (``read_only``), the
    fields named in an ``abstract_state`` dict (e.g. ``{"params": ...}``) and nothing else; raises CheckpointUnreadableError / CheckpointMismatchError / CheckpointGoneError
    (see the module docstring) instead of Orbax's errors."""
    with self._pinned(step) as manager:
      try:
        return self._restore(manager, step, abstract_state)
      except Exception as e:  # noqa: BLE001  (diagnosed below; a bug still shows as the cause)
        raise self._diagnose(manager, step, e) from e

  def _diagnose(self, manager: "checkpoint_io.Manager", step: int, e: Exception) -> Exception:
    where = os.path.join(self.directory, str(step))
    deadline = time.monotonic() + 2.0  # A trainer's pruning is a plain rmtree: let one in progress finish.
    while os.path.isdir(where) and time.monotonic() < deadline:
      time.sleep(0.1)
    if not os.path.isdir(where):
      return CheckpointGoneError(f"checkpoint {where} was deleted while being read (a trainer running in this "
                                 "workdir prunes old checkpoints)")
    try:
      manager.item_metadata(step)
    except Exception as m:  # noqa: BLE001
      return CheckpointUnreadableError(f"checkpoint {where} is unreadable: {checkpoint_io.short(m)}", step)
    if checkpoint_io.MISMATCH.search(str(e)):
      return CheckpointMismatchError(f"checkpoint {where} holds another model than the one in the workdir's "
                                     f"config (architecture or scale mismatch): {checkpoint_io.short(e)}", step)
    return CheckpointUnreadableError(f"checkpoint {where} is unreadable: {checkpoint_io.short(e)}", step)

  def restore_newest(self, abstract_state: Any, steps: Iterable[int]) -> tuple[Any, int, list[CheckpointReadError]]:
    """(state, step, passed over) of the first readable step of ``steps`` (in the given order). Unreadable ones
    are passed over with a warning naming each; a mismatch or a deleted step is raised at once. Raises
    CheckpointUnreadableError when none is readable."""
    passed = []
    for step in steps:
      try:
        state, _ = self.restore(step, abstract_state)
      except CheckpointUnreadableError as e:
        absl_logging.warning("%s; trying an older checkpoint", e)
        passed.append(e)
        continue
      if passed:
        absl_logging.warning("Using checkpoint %d instead of unreadable %s", step,
                             ", ".join(str(p.step) for p in passed))
      return state, step, passed
    raise CheckpointUnreadableError(f"no readable checkpoint in {self.directory}: "
                                    + "; ".join(str(p) for p in passed), passed[-1].step if passed else -1)

  def set_aside(self, step: int) -> str:
    """Moves an unreadable checkpoint out of ``checkpoints/`` (to ``unreadable_checkpoints/STEP``; never deleted),
    so that training can save that step again; returns where it went."""
    dst_dir = os.path.join(os.path.dirname(self.directory), "unreadable_checkpoints")
    os.makedirs(dst_dir, exist_ok=True)
    dst, n = os.path.join(dst_dir, str(step)), 1
    while os.path.exists(dst):
      dst, n = os.path.join(dst_dir, f"{step}-{n}"), n + 1
    os.rename(os.path.join(self.directory, str(step)), dst)
    self.manager.reload()
    return dst

  def _restore(self, manager: "checkpoint_io.Manager", step: int, abstract_state: Any) -> tuple[Any, dict]:
    if isinstance(abstract_state, dict):  # Part of the state (a reader's parameters): only those are read.
      restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
          item=abstract_state, restore_args=ocp.checkpoint_utils.construct_restore_args(abstract_state),
          partial_restore=True), meta=ocp.args.JsonRestore()))
      return restored["state"], restored["meta"]
    absent = _fields_absent_on_disk(manager, step, abstract_state)
    target = abstract_state
    if absent:  # Written before those (unused, None) fields existed: restore the rest, keep them None.
      target = {f.name: getattr(abstract_state, f.name) for f in dataclasses.fields(abstract_state)
                if f.name not in absent}
    restored = manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(target), meta=ocp.args.JsonRestore()))
    state = restored["state"]
    if absent:
      state = dataclasses.replace(abstract_state, **state)
    return state, restored["meta"]

  def reached_preemption(self, step: int) -> bool:
    return self.manager.reached_preemption(step)

  def close(self) -> None:
    self._stop_listening()
    try:
      self.manager.wait_until_finished()
    except Exception as e:  # An asynchronous save failed in the background.
      if isinstance(e, OSError) or errors.is_disk_full(e):
        raise self._save_error(self.manager.latest_step() or -1, e) from e
      raise
    finally:
      self.manager.close()


def _fields_absent_on_disk(manager: ocp.CheckpointManager, step: int, abstract_state: Any) -> set[str]:
  """Dataclass fields that are None in ``abstract_state`` and missing from the checkpoint's tree."""
  if not dataclasses.is_dataclass(abstract_state):
    return set()
  optional = {f.name for f in dataclasses.fields(abstract_state) if getattr(abstract_state, f.name) is None}
  if not optional:
    return set()
  tree = manager.item_metadata(step)["state"]
  saved = set(tree.keys()) if hasattr(tree, "keys") else set()
  return optional - saved if saved else set()
