"""Signals that stop a long job cleanly, heard at once even while the main thread waits in native code.

Python runs a signal handler only when the main thread returns to the interpreter, and a trainer's main thread
spends its time inside XLA (a compile, a step it waits for): a handler there runs minutes late, and a second
Ctrl-C is not heard at all. ``StopSignals`` installs Python handlers that do nothing themselves and has Python's
C-level handler write each signal's number to a socket (``signal.set_wakeup_fd``) that a watcher thread reads
as the signal arrives: the first calls ``on_first(name)`` (the job finishes its step, saves, exits), the second
prints ``on_second(name)`` to stderr and ends the process at once (``os._exit``, status 128 + the signal's
number, as a shell reports a process a signal killed), without waiting for anything.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from typing import Callable

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
  """``with StopSignals(on_first, on_second):`` (main thread only; outside it nothing is installed)."""

  def __init__(self, on_first: Callable[[str], None], on_second: Callable[[str], str]):
    self.on_first, self.on_second = on_first, on_second
    self.received: list[str] = []
    self._previous: dict[int, object] = {}
    self._old_fd, self._socks, self._thread = -1, None, None

  def __enter__(self) -> "StopSignals":
    if threading.current_thread() is not threading.main_thread():
      return self
    read, write = socket.socketpair()
    write.setblocking(False)
    self._socks = (read, write)
    self._thread = threading.Thread(target=self._watch, args=(read,), name="stop-signals", daemon=True)
    self._thread.start()
    self._old_fd = signal.set_wakeup_fd(write.fileno(), warn_on_full_buffer=False)
    for sig in SIGNALS:
      self._previous[sig] = signal.signal(sig, _ignore)  # The watcher acts; a handler must exist for the fd.
    return self

  def _watch(self, read: socket.socket) -> None:
    while True:
      try:
        data = read.recv(16)
      except OSError:
        return
      if not data:
        return
      for signum in data:
        if signum not in SIGNALS:
          continue
        name = signal.Signals(signum).name
        self.received.append(name)
        if len(self.received) == 1:
          self.on_first(name)
        else:
          sys.stderr.write(self.on_second(name).rstrip("\n") + "\n")
          sys.stderr.flush()
          os._exit(128 + signum)

  def __exit__(self, *exc) -> None:
    if self._socks is None:
      return
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)
    signal.set_wakeup_fd(self._old_fd)
    read, write = self._socks
    write.close()
    read.shutdown(socket.SHUT_RDWR)
    read.close()
    self._thread.join(timeout=5)
    self._socks = None


def _ignore(signum, frame) -> None:
  del signum, frame
