"""Real-ESRGAN degradations of a batch of patches on worker processes, so the input pipeline scales with cores.

Why the host and not the jitted step: JPEG here is real libjpeg (on a device it would have to be a JAX
approximation such as DiffJPEG), the host's cores are otherwise idle while an accelerator trains, and each patch's
work is independent. Why processes: in tf.data's threads the NumPy/SciPy/Pillow steps contend for the GIL, so
``config.data.degradation_workers`` processes do the work instead (the measurements are in docs/data.md and
experiments/results/benchmarks.md). Each patch is still degraded from its own generator seeded by
(seed, 2, patch index), so the result does not depend on the number of workers, threads or devices.

Workers are started with 'spawn' (forking a process that runs JAX/TensorFlow threads can deadlock) while the
parent's ``__main__`` is hidden: spawned children re-import it, and ``sr_jax.cli.train`` imports JAX and TensorFlow,
which the workers never use (they import NumPy, SciPy and Pillow only), and with one BLAS thread each. A pool
lives as long as the process.

Patches travel through shared memory, not the pool's pipes: a batch's HR patches are copied into a segment, each
worker reads its patch there and writes the LR and the HR target back; only the names and keys are pickled
(through the pipes, pickling and copying took a tenth of the parent's time for a patch). Segments are reused from batch to batch (a new mapping
costs page faults on every first touch) and unlinked by ``close``; the pipes still carry a batch when /dev/shm
has less than twice its size free. If the process is killed, multiprocessing's resource tracker unlinks them.
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
from multiprocessing import shared_memory

import numpy as np

from sr_jax.data.degradations import realesrgan

_POOLS: dict[int, multiprocessing.pool.Pool] = {}
_LOCK = threading.RLock()
_CLOSING = threading.Event()
_SEGMENTS: list[shared_memory.SharedMemory] = []  # Every segment made here, for close() to unlink.
_FREE: list[shared_memory.SharedMemory] = []  # Those no batch is using now.
_ATTACHED: dict[str, shared_memory.SharedMemory] = {}  # In a worker: the parent's segments it has mapped.


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
    for segment in _SEGMENTS:
      segment.unlink()
    _SEGMENTS.clear()
    _FREE.clear()


atexit.register(close)


def resolve(workers: int) -> int:
  """config.data.degradation_workers: -1 = one per CPU core, 0 = none (tf.data's threads), N = N processes."""
  return (os.cpu_count() or 1) if workers < 0 else workers


def _degrade_one(args) -> tuple[np.ndarray, np.ndarray]:
  hr, key, spec, scale = args
  return realesrgan.degrade(hr, np.random.default_rng(key), spec, scale)


def _lr_shape(hr_shape: tuple[int, ...], scale: int) -> tuple[int, ...]:
  return (hr_shape[0] // scale, hr_shape[1] // scale) + tuple(hr_shape[2:])


def _sizes(n: int, hr_shape: tuple[int, ...], scale: int) -> tuple[int, int]:
  """Bytes of a batch's HR patches and of its LR patches (a segment holds HR, LR, HR targets)."""
  return n * int(np.prod(hr_shape)), n * int(np.prod(_lr_shape(hr_shape, scale)))


def _layout(buf, n: int, hr_shape: tuple[int, ...], scale: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(HR inputs, LR outputs, HR targets) of a batch of ``n`` in a segment's buffer."""
  hr_bytes, lr_bytes = _sizes(n, hr_shape, scale)
  return (np.ndarray((n, *hr_shape), np.uint8, buf, 0),
          np.ndarray((n, *_lr_shape(hr_shape, scale)), np.uint8, buf, hr_bytes),
          np.ndarray((n, *hr_shape), np.uint8, buf, hr_bytes + lr_bytes))


def _degrade_shared(args) -> None:
  """In a worker: patch ``i`` of the batch in segment ``name``, its outputs written beside it."""
  name, n, hr_shape, i, key, spec, scale = args
  if name not in _ATTACHED:  # Registered with the parent's resource tracker again: harmless (a set of names).
    _ATTACHED[name] = shared_memory.SharedMemory(name=name)
  hrs, lrs, gts = _layout(_ATTACHED[name].buf, n, hr_shape, scale)
  lrs[i], gts[i] = realesrgan.degrade(hrs[i], np.random.default_rng(key), spec, scale)


def _segment(nbytes: int) -> shared_memory.SharedMemory | None:
  """A free segment of at least ``nbytes``, or a new one; None when /dev/shm has not twice that left (Docker's
  default is 64 MB; writing past a full tmpfs would kill the process with SIGBUS): the pipes carry the batch."""
  with _LOCK:
    for j, segment in enumerate(_FREE):
      if segment.size >= nbytes:
        return _FREE.pop(j)
    try:
      room = os.statvfs("/dev/shm")
      if room.f_bavail * room.f_frsize < 2 * nbytes:
        return None
      segment = shared_memory.SharedMemory(create=True, size=nbytes)
    except OSError:
      return None
    _SEGMENTS.append(segment)
    return segment


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
  if workers <= 0:
    out = []
    for hr, key in zip(hrs, keys):
      if _CLOSING.is_set():
        return _blank(hrs, scale)
      out.append(_degrade_one((hr, key, spec, scale)))
    return out
  n, hr_shape = len(hrs), tuple(hrs.shape[1:])
  with _LOCK:
    if _CLOSING.is_set():
      return _blank(hrs, scale)
    hr_bytes, lr_bytes = _sizes(n, hr_shape, scale)
    segment = _segment(2 * hr_bytes + lr_bytes)
    if segment is None:
      result = _pool(workers).map_async(_degrade_one, [(hr, key, spec, scale) for hr, key in zip(hrs, keys)],
                                        chunksize=1)  # Costs vary (random resize): balance.
    else:
      _layout(segment.buf, n, hr_shape, scale)[0][...] = hrs
      jobs = [(segment.name, n, hr_shape, i, key, spec, scale) for i, key in enumerate(keys)]
      result = _pool(workers).map_async(_degrade_shared, jobs, chunksize=1)
  while not _CLOSING.is_set():
    try:
      pairs = result.get(timeout=0.1)
    except multiprocessing.TimeoutError:
      continue
    if segment is None:
      return pairs
    lrs, gts = _layout(segment.buf, n, hr_shape, scale)[1:]
    out = [(lr.copy(), gt.copy()) for lr, gt in zip(lrs, gts)]
    del lrs, gts  # No view may outlive the call: a segment with exported views cannot be closed.
    with _LOCK:
      _FREE.append(segment)
    return out
  return _blank(hrs, scale)


def _blank(hrs: np.ndarray, scale: int) -> list[tuple[np.ndarray, np.ndarray]]:
  return [(np.zeros(_lr_shape(hr.shape, scale), np.uint8), np.zeros_like(hr)) for hr in hrs]
