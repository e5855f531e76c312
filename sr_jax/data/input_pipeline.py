"""tf.data pipeline of random aligned (LR, HR) training patches.

Patch ``i`` of a run (counting over all processes and steps) is a pure function of ``(seed, i)``: its image is
entry ``i mod N`` of a per-epoch permutation of the N images (every image once per epoch, as EDSR/BasicSR
sample), its crop position and dihedral transform come from a counter-based RNG keyed on ``i``. Consecutive
patches of a batch therefore come from different images (the mixing a shuffle buffer would give, without its
memory or warm-up), and the batch of step ``s`` is the same whatever the number of devices or processes, and
after a restart: resuming at step ``s`` costs nothing and is exact.

Process ``p`` of ``P`` builds rows ``[p*B/P, (p+1)*B/P)`` of each global batch of B (its own disjoint shard).
Images are decoded once (datasets.load_source) and cropped by NumPy; the LR patch is made from the HR patch
by MATLAB bicubic in TensorFlow (imresize.tf_downscale) on parallel tf.data threads, or, with a degradation
model (Real-ESRGAN's), by NumPy on worker processes (``degradations.workers``: the GIL serialises it on threads)
from a generator seeded by ``(seed, i)``, so the degraded patch is as reproducible as the crop. Batches hold uint8
pixels (4x less host-to-device traffic); the train step converts them to [0, 1] floats.
"""

from __future__ import annotations

import atexit
import collections
import threading
import time

import numpy as np
import tensorflow as tf

from sr_jax.data.datasets import ImageSet
from sr_jax.data.degradations import realesrgan, workers
from sr_jax.image import color, dihedral, imresize



class PatchSampler:
  """Deterministic random HR patches: ``sample(i)`` depends only on (seed, i)."""

  def __init__(self, images: ImageSet, hr_size: int, *, seed: int, augment: bool = True, scale: int = 1):
    if (images.shapes < hr_size).any():
      raise ValueError(f"images smaller than the {hr_size}px HR patch reached the sampler")
    self.images = images
    self.hr_size = hr_size
    # With the dataset's own LR images, crops sit on the LR grid (HR offsets are multiples of the scale).
    self.grid = scale if images.lr_images is not None else 1
    self.seed = int(seed)
    self.augment = augment
    self._perms: collections.OrderedDict[int, np.ndarray] = collections.OrderedDict()
    self._lock = threading.Lock()

  def _permutation(self, epoch: int) -> np.ndarray:
    with self._lock:
      perm = self._perms.get(epoch)
      if perm is None:
        perm = np.random.default_rng([self.seed, 0, epoch]).permutation(len(self.images))
        self._perms[epoch] = perm
        if len(self._perms) > 4:
          self._perms.popitem(last=False)
      return perm

  def location(self, index: int) -> tuple[int, int, int, int]:
    """(image, top, left, transform) of patch ``index``."""
    n = len(self.images)
    image = int(self._permutation(index // n)[index % n])
    h, w = self.images.shapes[image]
    rng = np.random.default_rng([self.seed, 1, index])
    g = self.grid
    top = int(rng.integers(0, (h - self.hr_size) // g + 1)) * g
    left = int(rng.integers(0, (w - self.hr_size) // g + 1)) * g
    transform = int(rng.integers(0, 8)) if self.augment else 0
    return image, top, left, transform

  def sample(self, index: int) -> np.ndarray:
    image, top, left, transform = self.location(index)
    s = self.hr_size
    patch = self.images.get(image)[top:top + s, left:left + s]
    return np.ascontiguousarray(dihedral.apply(patch, transform))

  def sample_lr(self, index: int) -> np.ndarray:
    """The dataset's own LR patch aligned with ``sample(index)``."""
    image, top, left, transform = self.location(index)
    g, s = self.grid, self.hr_size // self.grid
    patch = self.images.lr_images[image][top // g:top // g + s, left // g:left // g + s]
    return np.ascontiguousarray(dihedral.apply(patch, transform))

  def sample_batch(self, first: int, count: int) -> np.ndarray:
    return np.stack([self.sample(first + j) for j in range(count)])


class _Calls:
  """The Python batch calls tf.data's threads are running, for ``_quiesce``."""
  lock = threading.Lock()
  active = 0
  last = 0.0

  def __enter__(self):
    with self.lock:
      _Calls.active += 1

  def __exit__(self, *exc):
    with self.lock:
      _Calls.active -= 1
      _Calls.last = time.monotonic()


def _quiesce(idle_s: float = 0.25, timeout_s: float = 10.0) -> None:
  """At interpreter exit, before Python shuts down: stop the degradation work (later batches are blank and
  immediate), then wait until tf.data's threads have filled their buffers and stopped calling Python. A dataset
  iterator still alive then (a script's global) would otherwise keep its threads inside Python while the
  interpreter finalises: an abort ('terminate called without an active exception'), a hang, or a traceback
  from a terminated worker pool."""
  workers.close()
  deadline = time.monotonic() + timeout_s
  while time.monotonic() < deadline:
    with _Calls.lock:
      if _Calls.active == 0 and time.monotonic() - _Calls.last > idle_s:
        return
    time.sleep(0.05)


atexit.register(_quiesce)  # After workers' own handler is registered (its import above), so it runs first.


def make_lr(hr: tf.Tensor, scale: int) -> tf.Tensor:
  """uint8 HR patches [..., H, W, C] -> uint8 LR patches: MATLAB bicubic, rounded like a saved LR image."""
  lr = imresize.tf_downscale(tf.cast(hr, tf.float32), scale)
  return tf.cast(tf.clip_by_value(tf.round(lr), 0.0, 255.0), tf.uint8)


def train_dataset(images: ImageSet, *, patch_size: int, scale: int, global_batch: int, seed: int,
                  start_step: int = 0, augment: bool = True, process_index: int = 0,
                  process_count: int = 1, channels: int = 3, steps_per_call: int = 1,
                  degradation: realesrgan.Spec | None = None, degradation_workers: int = 0) -> tf.data.Dataset:
  """Infinite dataset of this process's rows of each global batch from ``start_step`` on.

  Elements are dicts of uint8 arrays: ``lr`` (b, p, p, C) and ``hr`` (b, p*s, p*s, C), b = global/processes;
  with ``steps_per_call`` K > 1, K consecutive batches stacked on a leading axis (train.steps_per_dispatch).
  ``degradation``: make each LR patch with Real-ESRGAN's model (and train against its sharpened HR when the
  spec says so) instead of bicubic, on ``degradation_workers`` processes (0: tf.data's threads; see
  ``degradations.workers``); the patches are the same either way.
  """
  if global_batch % process_count:
    raise ValueError(f"train.batch_size={global_batch} is not divisible by the {process_count} processes")
  local = global_batch // process_count
  hr_size = patch_size * scale
  sampler = PatchSampler(images, hr_size, seed=seed, augment=augment, scale=scale)
  paired = images.lr_images is not None or degradation is not None
  gray = color.rgb_to_gray_uint8 if channels == 1 else (lambda x: x)

  def py_batch(step):
    with _Calls():
      if workers.closing():  # Interpreter exit (_quiesce): blanks nobody reads, at once.
        hr = np.zeros((local, hr_size, hr_size, channels), np.uint8)
        return (hr, np.zeros((local, patch_size, patch_size, channels), np.uint8)) if paired else hr
      return batch(step)

  def batch(step):
    first = int(step) * global_batch + process_index * local
    hr = sampler.sample_batch(first, local)
    if degradation is not None:
      pairs = workers.degrade_batch(hr, [(seed, 2, first + j) for j in range(local)], degradation, scale,
                                    degradation_workers)
      return gray(np.stack([p[1] for p in pairs])), gray(np.stack([p[0] for p in pairs]))
    if not paired:
      return gray(hr)
    return gray(hr), gray(np.stack([sampler.sample_lr(first + j) for j in range(local)]))

  def make(step):
    if paired:
      hr, lr = tf.numpy_function(py_batch, [step], (tf.uint8, tf.uint8), stateful=False)
      lr = tf.ensure_shape(lr, (local, patch_size, patch_size, channels))
    else:
      hr = tf.numpy_function(py_batch, [step], tf.uint8, stateful=False)
    hr = tf.ensure_shape(hr, (local, hr_size, hr_size, channels))
    return {"lr": lr if paired else make_lr(hr, scale), "hr": hr}

  ds = tf.data.Dataset.counter(start=start_step)
  ds = ds.map(make, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  options = tf.data.Options()
  options.deterministic = True
  options.threading.private_threadpool_size = 0
  # tf.data's autotuning thread held the trainer's exit (the iterator's destructor waits for it) for 10-19 s after
  # a run ended or stopped on Ctrl-C; without it the exit takes ~1 s and the pipeline delivers what it did (2-core
  # CPU, 2026-12-07: 280 vs 283 bicubic batches/s of 16, 9.9 vs 10.5 Real-ESRGAN-degraded ones).
  options.autotune.enabled = False
  ds = ds.with_options(options)
  if steps_per_call > 1:
    ds = ds.batch(steps_per_call, drop_remainder=True)
  return ds.prefetch(tf.data.AUTOTUNE)
