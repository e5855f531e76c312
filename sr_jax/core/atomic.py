"""Writing files so that a crash, a signal or a full disk never leaves a half-written file under the final name.

``replace(path)`` gives a new file in the destination's folder under a hidden temporary name
(``.NAME.tmp<PID>-<random>``, which every folder listing of sr_jax skips); when the block ends without an error the
file is flushed to disk and renamed over ``path`` in one step (``os.replace``). So the previous file at ``path``
stays intact until the new one is complete, and a symlink at ``path`` is replaced by the file, never followed (its
target is not touched). On any error, KeyboardInterrupt included, the temporary file is removed. Only ``kill -9``
or a power cut can leave one behind: ``remove_stale(folder)`` deletes those whose process is gone (and the
``NAME.part<PID>`` files that downloads of earlier versions left, for the names it is given).

A temporary name is never longer than the folder allows (255 bytes on the usual file systems): a long ``NAME`` is
shortened in the temporary name (``.NAME[:k].tmp<PID>-<random>``), so any name that can be written can be written
atomically. ``temp_dir(path)`` is the same for a folder that is built whole and renamed into place.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from typing import BinaryIO, Iterator

TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.tmp(?P<pid>\d+)-[0-9a-f]{8}$")
_OLD_PART = re.compile(r"^(?P<name>.+)\.part(?P<pid>\d+)$")  # sr_jax.core.download before version 0.3.1.


def _name_max(folder: str) -> int:
  try:
    return os.pathconf(folder, "PC_NAME_MAX")
  except (OSError, ValueError):
    return 255


def temp_path(path: str) -> str:
  """A unique hidden name beside ``path`` (``.NAME.tmp<PID>-<random>``, ``NAME`` shortened to fit the folder)."""
  folder, base = os.path.split(os.path.abspath(path))
  return os.path.join(folder, f".{_temp_stem(folder, base)}.tmp{os.getpid()}-{secrets.token_hex(4)}")


def temp_dir(path: str) -> str:
  """A new empty hidden folder beside ``path`` (``temp_path``'s name), made by this process."""
  tmp = temp_path(path)
  os.mkdir(tmp)
  return tmp


@contextlib.contextmanager
def replace(path: str) -> Iterator[BinaryIO]:
  """A binary file (its ``name`` is the temporary path) that becomes ``path`` when the block succeeds."""
  tmp = temp_path(path)
  f = open(tmp, "xb")  # Exclusive: never follows anything already at the temporary name.
  try:
    with f:
      yield f
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(FileNotFoundError):
      os.remove(tmp)
    raise


def write_bytes(path: str, data: bytes) -> None:
  with replace(path) as f:
    f.write(data)


def write_text(path: str, text: str) -> None:
  write_bytes(path, text.encode())


def alive(pid: int) -> bool:
  """Whether process ``pid`` exists (this one included)."""
  if pid == os.getpid():
    return True
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # Another user's live process.
    return True
  return True


def _temp_stem(folder: str, name: str) -> str:
  """``name`` as ``temp_path`` writes it into a temporary name in ``folder`` (shortened to fit)."""
  room = _name_max(folder) - len(f".tmp{2**22}-00000000".encode()) - 1
  return name.encode()[:room].decode(errors="ignore")


def _names(folder: str) -> list[str]:
  try:
    return os.listdir(folder)
  except OSError:
    return []


def remove_stale_dirs(folder: str, name: str) -> list[str]:
  """Deletes the temporary folders that ``temp_dir(os.path.join(folder, name))`` made and whose process is gone
  (only those: their hidden name carries the destination's name and the PID that made it); returns them."""
  removed = []
  for n in _names(folder):
    m = TEMP_NAME.match(n)
    path = os.path.join(folder, n)
    if m and m["name"] in (name, _temp_stem(folder, name)) and not alive(int(m["pid"])) and \
        os.path.isdir(path) and not os.path.islink(path):
      shutil.rmtree(path, ignore_errors=True)
      removed.append(path)
  return removed


def remove_stale(folder: str, downloads: tuple[str, ...] = ()) -> list[str]:
  """Deletes the temporary files in ``folder`` (not its sub-folders) whose writing process is gone; returns them.

  ``downloads``: file names whose old-style ``NAME.part<PID>`` leftovers go too (only those: a user's own
  ``something.part2`` is never touched)."""
  removed = []
  for name in _names(folder):
    m = TEMP_NAME.match(name) or ((old := _OLD_PART.match(name)) and old["name"] in downloads and old)
    path = os.path.join(folder, name)
    if m and not alive(int(m["pid"])) and not os.path.isdir(path):
      with contextlib.suppress(FileNotFoundError):
        os.remove(path)
        removed.append(path)
  return removed
