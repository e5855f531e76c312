"""Real-ESRGAN degradations of a batch of patches on worker processes, so the input pipeline scales with cores.

Why the host and not the jitted step: JPEG here is real libjpeg (on a device it would have to be a JAX
approximation such as DiffJPEG), the host's cores are otherwise idle while an accelerator trains, and the
per-patch work (15-25 ms a 256² patch on one core) is independent; a device variant could not be measured on the
GPU-less machine this was built on.

Measured on the 2-core CI machine (experiments/results/benchmarks.md): in tf.data's threads the NumPy/SciPy/
Pillow steps contend for the GIL (two cores were slower than one), so ``config.data.degradation_workers``
processes do the work instead. Each patch is still degraded from its own generator seeded by
(seed, 2, patch index), so the result does not depend on the number of workers, threads or devices.

Workers are started with 'spawn' (forking a process that runs JAX/TensorFlow threads can deadlock) while the
parent's ``__main__`` is hidden: spawned children re-import it, and ``sr_jax.main`` imports JAX and TensorFlow,
which the workers never use (they import NumPy, SciPy and Pillow only), and with one BLAS thread each. A pool
lives as long as the process.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import multiprocessing.pool
import os
import sys
import threading
import types

import numpy as np

from sr_jax.degradations import realesrgan

_POOLS: dict[int, multiprocessing.pool.Pool] = {}
_LOCK = threading.RLock()
_CLOSING = threading.Event()


def closing() -> bool:
  """True once ``close`` ran (interpreter exit)."""
  return _CLOSING.is_set()


def close() -> None:
  """Ends the degradation work for good (registered for interpreter exit): batches in flight and later ones
  return blank patches at once, the worker pools are terminated."""
  _CLOSING.set()
  with _LOCK:
    for pool in _POOLS.values():
      pool.terminate()
    _POOLS.clear()


atexit.register(close)


def resolve(workers: int) -> int:
  """config.data.degradation_workers: -1 = one per CPU core, 0 = none (tf.data's threads), N = N processes."""
  return (os.cpu_count() or 1) if workers < 0 else workers


def _degrade_one(args) -> tuple[np.ndarray, np.ndarray]:
  hr, key, spec, scale = args
  return realesrgan.degrade(hr, np.random.default_rng(key), spec, scale)


# One BLAS thread per worker: OpenBLAS threads spin while they wait, and two workers with two threads each on two
# cores ran slower than no workers at all (19 vs 25 patches/s; 48 with one thread each). glibc's malloc keeps the
# freed buffers of a patch for the next one instead of unmapping them (its default for blocks over 128 KB, which
# then cost page faults on every first touch): ~7 % less time a patch.
_WORKER_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "MALLOC_MMAP_THRESHOLD_": str(256 << 20), "MALLOC_TRIM_THRESHOLD_": str(512 << 20)}


@contextlib.contextmanager
def _light_main():
  """While workers spawn: no parent ``__main__`` for them to re-import, single-threaded BLAS in them."""
  main, env = sys.modules["__main__"], {k: os.environ.get(k) for k in _WORKER_ENV}
  sys.modules["__main__"] = types.ModuleType("__main__")
  os.environ.update(_WORKER_ENV)
  try:
    yield
  finally:
    sys.modules["__main__"] = main
    for k, v in env.items():
      if v is None:
        os.environ.pop(k, None)
      else:
        os.environ[k] = v


def _pool(workers: int) -> multiprocessing.pool.Pool:
  with _LOCK:
    if workers not in _POOLS:
      with _light_main():  # multiprocessing.Pool starts all its workers here.
        pool = multiprocessing.get_context("spawn").Pool(workers)
      _POOLS[workers] = pool
    return _POOLS[workers]


def degrade_batch(hrs: np.ndarray, keys: list[tuple[int, ...]], spec: realesrgan.Spec, scale: int,
                  workers: int) -> list[tuple[np.ndarray, np.ndarray]]:
  """``[realesrgan.degrade(hr, default_rng(key), spec, scale)]`` for each patch, on ``workers`` processes
  (0: here). After ``close`` (interpreter exit) the patches are blank: tf.data's threads may still ask for
  batches then, and must not wait on a terminated pool or run for long while Python shuts down."""
  jobs = [(hr, key, spec, scale) for hr, key in zip(hrs, keys)]
  if workers <= 0:
    out = []
    for job in jobs:
      if _CLOSING.is_set():
        return _blank(hrs, scale)
      out.append(_degrade_one(job))
    return out
  with _LOCK:
    if _CLOSING.is_set():
      return _blank(hrs, scale)
    result = _pool(workers).map_async(_degrade_one, jobs, chunksize=1)  # Costs vary (random resize): balance.
  while not _CLOSING.is_set():
    try:
      return result.get(timeout=0.1)
    except multiprocessing.TimeoutError:
      pass
  return _blank(hrs, scale)


def _blank(hrs: np.ndarray, scale: int) -> list[tuple[np.ndarray, np.ndarray]]:
  h, w = hrs.shape[1:3]
  return [(np.zeros((h // scale, w // scale) + hr.shape[2:], np.uint8), np.zeros_like(hr)) for hr in hrs]
