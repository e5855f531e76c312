"""Runs one command of a sweep member so that it stops when its launcher dies, however it dies.

  python experiments/member_guard.py LAUNCHER_PID COMMAND...

The launcher starts each member's command through this small process. It asks Linux to send it SIGTERM when its
parent, the launcher, dies (``PR_SET_PDEATHSIG``; ``kill -9`` included) and passes exactly one SIGTERM on to the
command, which for a trainer means: finish the step, save a checkpoint, exit (a second SIGTERM would stop a
trainer without saving, and Linux may signal a process once for each launcher thread that exits, hence this
middleman instead of setting the signal on the trainer itself). Ctrl-C reaches the command directly (it is in
the terminal's process group); this process ignores it and waits. Its exit status is the command's.
"""

import ctypes
import os
import signal
import subprocess
import sys


def main(argv: list[str]) -> int:
  launcher, command = int(argv[1]), argv[2:]
  child: subprocess.Popen | None = None
  sent = False

  def forward(signum=None, frame=None) -> None:
    nonlocal sent
    if child is not None and not sent and child.poll() is None:
      sent = True
      child.send_signal(signal.SIGTERM)

  signal.signal(signal.SIGTERM, forward)
  signal.signal(signal.SIGINT, lambda *_: None)  # The command gets the terminal's Ctrl-C itself.
  try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG (Linux only).
  except (AttributeError, OSError):
    pass
  child = subprocess.Popen(command)
  if os.getppid() != launcher:  # The launcher died before the request above took effect.
    forward()
  code = child.wait()
  return 128 - code if code < 0 else code  # Killed by signal N: 128 + N, as a shell reports it.


if __name__ == "__main__":
  sys.exit(main(sys.argv))
