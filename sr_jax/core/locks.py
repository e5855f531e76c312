"""Exclusive locks on files (``fcntl.flock``) that say who holds them: one trainer per workdir, one launcher per
sweep member.

The kernel releases a lock when its process dies however it dies (``kill -9`` included), so a lock never outlives
its holder and never needs clearing by hand. The file records the holder (``what``, PID, host, start time) for the
message whoever finds it held gets; the file itself is left in place (deleting it would let two processes lock
two different files of one name).
"""

from __future__ import annotations

import fcntl
import os
import socket
import time


class Lock:
  """``with Lock(path, "trainer"):`` holds ``path`` exclusively; ``acquire()`` returns None, or the holder's
  description when another process holds it."""

  def __init__(self, path: str, what: str):
    self.path, self.what, self._fd = path, what, None

  def acquire(self) -> str | None:
    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = os.read(fd, 512).decode(errors="replace").strip() or "another process"
      os.close(fd)
      return holder
    os.ftruncate(fd, 0)
    os.write(fd, f"{self.what} PID {os.getpid()} on host {socket.gethostname()} (since "
             f"{time.strftime('%Y-%m-%d %H:%M:%S')})".encode())
    self._fd = fd
    return None

  def release(self) -> None:
    if self._fd is not None:
      fcntl.flock(self._fd, fcntl.LOCK_UN)
      os.close(self._fd)
      self._fd = None


def holder(path: str) -> str | None:
  """Who holds the lock at ``path`` now (None: nobody; the file is not created if missing)."""
  if not os.path.exists(path):
    return None
  probe = Lock(path, "probe")
  held = probe.acquire()
  probe.release()
  return held
