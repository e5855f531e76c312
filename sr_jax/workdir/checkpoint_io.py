"""Checkpoint folders as readers meet them: damaged, or deleted under them by a live trainer.

Beneath ``checkpointing.Checkpointer``, which uses all of this:
- the errors a read ends in: ``CheckpointUnreadableError`` (the files are damaged: a truncated, empty or garbage
  ``manifest.ocdbt``, a garbage ``meta``), ``CheckpointMismatchError`` (readable, but another model) and
  ``CheckpointGoneError`` (deleted while being read); ``short`` keeps the informative part of Orbax's message;
- ``Manager``: Orbax's CheckpointManager, except that a step whose metrics file cannot be parsed has no metrics,
  instead of every manager of the workdir failing to start;
- ``link_tree``: a reader's private hard-linked view of one checkpoint (``WORKDIR/.reading-<PID>-*``), whose files
  stay readable when the trainer deletes the checkpoint; ``remove_dead_readers_views`` clears those of readers
  that were killed;
- ``drop_closed_loop_noise``: the tracebacks TensorStore's leftover callbacks print after a failed read or save.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
from typing import Any, Callable

import orbax.checkpoint as ocp
from absl import logging as absl_logging

from sr_jax.core import atomic
from sr_jax.core.errors import UserError

READING = ".reading-"  # WORKDIR/.reading-<PID>-*: a reader's hard-linked view of one checkpoint.


class CheckpointReadError(UserError, ValueError):
  """A checkpoint that exists but cannot be used; ``step`` says which."""

  def __init__(self, message: str, step: int):
    super().__init__(message)
    self.step = step


class CheckpointUnreadableError(CheckpointReadError):
  """The checkpoint's files are damaged (truncated, empty, garbage)."""


class CheckpointMismatchError(CheckpointReadError):
  """The checkpoint is readable but holds another model than the one asked for."""


class CheckpointGoneError(UserError, FileNotFoundError):
  """The checkpoint was deleted while being read (a live trainer prunes old ones)."""


# Orbax's own messages when the saved tree or shapes differ from the requested ones (as opposed to damaged files).
MISMATCH = re.compile(r"not compatible with the stored shape|tree structures do not match|Requested shape")


def short(e: BaseException) -> str:
  """The informative part of a (long, multi-line) Orbax/TensorStore error."""
  text = " ".join(str(e).split()) or type(e).__name__
  if "Error decoding" in text:
    text = text[text.rindex("Error decoding"):]
  text = text.split(" [tensorstore_spec=")[0].split(" [source locations=")[0]
  return text[:240] + ("..." if len(text) > 240 else "")


def drop_closed_loop_noise() -> None:
  """A failed restore or save leaves TensorStore callbacks that find Orbax's event loop closed; Python prints each as an
  'unraisable' traceback (dozens, after the error itself was handled), and asyncio logs the failed read tasks no one
  awaited. Only those are dropped, once installed."""
  previous = sys.unraisablehook
  if getattr(previous, "_sr_jax", False):
    return

  def hook(unraisable) -> None:
    e = unraisable.exc_value
    if (isinstance(e, RuntimeError) and "Event loop is closed" in str(e)) or (
        "_read_array_index_and_device_put" in repr(unraisable.object)):
      return
    previous(unraisable)

  hook._sr_jax = True
  sys.unraisablehook = hook
  # The same reads' asyncio tasks, failed on a damaged checkpoint and collected unread (asyncio logs each as "Task
  # exception was never retrieved", at garbage-collection time, after the error itself was reported).
  logging.getLogger("asyncio").addFilter(_leftover_checkpoint_tasks)


def _leftover_checkpoint_tasks(record: logging.LogRecord) -> bool:
  text = record.getMessage()
  return not (text.startswith("Task exception was never retrieved") and ("ocdbt" in text or "tensorstore" in text))


class Manager(ocp.CheckpointManager):
  """Orbax's manager, except that a step whose metrics file cannot be parsed has no metrics (instead of every
  manager of the workdir failing to start); ``unreadable_metrics`` records why."""

  def __init__(self, *args, **kwargs):
    self.unreadable_metrics: dict[int, str] = {}
    super().__init__(*args, **kwargs)

  def _tolerant(self, read: Callable[[int], Any], step: int):
    try:
      return read(step)
    except (ValueError, OSError) as e:  # json.JSONDecodeError is a ValueError.
      if step not in self.unreadable_metrics:
        self.unreadable_metrics[step] = short(e)
        absl_logging.warning("checkpoint %d: its metrics file is unreadable (%s); it is not considered for "
                             "'best'", step, short(e))
      return None

  def metrics(self, step: int):
    return self._tolerant(super().metrics, step)

  def _get_metrics(self, step: int):  # What Orbax 0.12's metadata() and metrics() read through.
    return self._tolerant(super()._get_metrics, step)


def remove_dead_readers_views(workdir: str) -> None:
  """Views left by readers that were killed (kill -9) before removing them."""
  try:
    names = [n for n in os.listdir(workdir) if n.startswith(READING)]
  except OSError:
    return
  for name in names:
    pid = name[len(READING):].split("-", 1)[0]
    if pid.isdigit() and not atomic.alive(int(pid)):
      shutil.rmtree(os.path.join(workdir, name), ignore_errors=True)


def link_tree(src: str, dst: str) -> None:
  """``dst`` as a tree of hard links to ``src``'s files; raises FileNotFoundError if anything of ``src`` vanishes
  meanwhile."""
  def fail(e: OSError) -> None:
    raise e

  os.makedirs(dst)
  for root, dirs, files in os.walk(src, onerror=fail):
    here = os.path.join(dst, os.path.relpath(root, src))
    for d in dirs:
      os.mkdir(os.path.join(here, d))
    for f in files:
      os.link(os.path.join(root, f), os.path.join(here, f))
  if not os.path.isdir(src):
    raise FileNotFoundError(src)


def saved_steps(directory: str, exclude: int | None = None) -> list[int]:
  """The complete checkpoints in ``directory`` as the disk has them now (Orbax's list can be stale)."""
  try:
    return sorted(int(n) for n in os.listdir(directory) if n.isdigit() and int(n) != exclude)
  except OSError:
    return []
