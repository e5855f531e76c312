"""A status line at most every ``every`` seconds from a loop whose items may each take long (validation images,
benchmark images): so that no long command is silent for minutes, without a line per item when items are quick."""

from __future__ import annotations

import time
from typing import Callable


class Heartbeat:
  """``beat(lambda: "3/12 images")`` writes the message through ``say`` when ``every`` seconds have passed since
  the start or the last line; ``clock`` for tests."""

  def __init__(self, say: Callable[[str], None], every: float = 10.0, clock: Callable[[], float] = time.monotonic):
    self.say, self.every, self.clock = say, every, clock
    self.last = self.start = clock()

  def beat(self, message: Callable[[], str]) -> bool:
    now = self.clock()
    if now - self.last < self.every:
      return False
    self.say(f"{message()} ({now - self.start:.0f} s)")
    self.last = now
    return True
