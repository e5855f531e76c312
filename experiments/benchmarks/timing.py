"""The one timing rule of the benchmarks: one warm-up call (compilation included, reported apart), then the
median of ``repeats`` timed calls. ``sync`` waits for the result (``jax.block_until_ready`` for JAX).
``pipelined`` times calls as a training loop makes them: queued back to back, one wait at the end."""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable


def warmup_then_median(fn: Callable[[], Any], repeats: int, sync: Callable[[Any], Any] = lambda x: x
                       ) -> tuple[float, float]:
  """(seconds of the first call, median seconds of the ``repeats`` calls after it)."""
  t0 = time.perf_counter()
  sync(fn())
  first = time.perf_counter() - t0
  times = []
  for _ in range(max(1, repeats)):
    t0 = time.perf_counter()
    sync(fn())
    times.append(time.perf_counter() - t0)
  return first, statistics.median(times)


def pipelined(fn: Callable[[], Any], calls: int, sync: Callable[[Any], Any] = lambda x: x) -> float:
  """Seconds per call of ``calls`` calls dispatched without waiting in between (JAX's asynchronous dispatch lets
  the host queue the next call while the device runs one), after one warm-up call."""
  sync(fn())
  t0 = time.perf_counter()
  out = None
  for _ in range(max(1, calls)):
    out = fn()
  sync(out)
  return (time.perf_counter() - t0) / max(1, calls)
