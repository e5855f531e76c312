"""Upscaling whole images with a trained generator: full-image or tiled (seam-free), optional x8 self-ensemble.

Tiling: the image is covered by windows of one fixed size (``tile + 2 * overlap`` LR pixels, so one compiled
shape serves every tile), clamped inside the image so a window only ever holds real pixels. Each window
contributes its core, at least ``overlap`` pixels away from any window edge that is not an image edge. With
``overlap`` >= the model's receptive-field radius every output pixel sees exactly the context it sees in
full-image inference, so tiled equals full to float precision (the default for convolutional networks).
Attention models (SwinIR, HAT) anchor their windows to a grid (``registry.window_grid``) and pad their input
to its multiples: the image is reflect-padded to the grid as the model would pad it, tile and overlap are
rounded up to grid multiples, so every tile partitions its windows exactly as the whole image does; what still
differs is attention across a tile's edge (masked in the tile as at an image edge), which the overlap
(``tile_overlap``, measured in docs/models.md) keeps away from the tile's core. RCAN's channel
attention averages over the tile, so its tiles differ slightly too. Windows run in batches of ``batch_size``.

``tile="auto"`` (sr-upscale's default) on a CPU runs each image whole when its forward pass fits a memory
budget (``budget_gb``, measured per pixel by XLA: ``tile_plan``) and in tiles only beyond it, one window per
call, with windows that compute at most ``tile_plan.MAX_WORK`` times the image's pixels (the overlap is cut below
the exact one, and a line says so, only where the exact one would exceed that). On an accelerator it runs the
whole image, where tiles with the exact overlap of a large receptive field would recompute most of the image
(figures in docs/inference.md); where the device runs out of memory the same image is retried in tiles, one
window per call, from ``AUTO_TILES[0]`` down, and the tile that worked is kept for the images after it.

``batch`` runs several same-size images that each fit in one window (or, ``auto`` on a CPU, within the budget
together) ``batch_size`` at a time (a folder of frames or thumbnails), results equal to one at a time to float
rounding. A last batch smaller than ``batch_size`` runs at its own size, not padded with copies.
"""

from __future__ import annotations

import functools

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx
from tqdm import tqdm

from sr_jax.core import boundary
from sr_jax.inference import tile_plan
from sr_jax.image import color, dihedral, imresize
from sr_jax.models import registry


CPU_TILE = 192  # tile="auto" on a CPU where XLA reports no memory figure to plan with.
AUTO_TILES = (1024, 512, 256, 128, 64)  # tile="auto" on an accelerator after an out-of-memory error, in order.


def parse_tile(value: str | int) -> int | str:
  """A --tile flag's value: 'auto' or an integer >= 0 (0: whole images); ValueError naming the flag otherwise."""
  if isinstance(value, int) or str(value).strip().lstrip("-").isdigit():
    if int(value) >= 0:
      return int(value)
  elif str(value).strip().lower() == "auto":
    return "auto"
  raise ValueError(f"--tile={value!r}: give 'auto' or a tile side in LR pixels (0: whole images)")


def _out_of_memory(e: Exception) -> bool:
  return "RESOURCE_EXHAUSTED" in str(e) or "out of memory" in str(e).lower()


class Upscaler:
  """``upscaler(lr_uint8 HxWxC) -> float HR image in [0, 1] (unclipped)``."""

  def __init__(self, graphdef: nnx.GraphDef, params, model_cfg: ml_collections.ConfigDict, *,
               tile: int | str = 0, overlap: int | None = None, batch_size: int = 4, self_ensemble: bool = False,
               progress: bool = False, budget_gb: float = tile_plan.DEFAULT_BUDGET_GB):
    self.auto = parse_tile(tile) == "auto"
    self.planned = self.auto and jax.default_backend() == "cpu"  # Whole or tiled by the memory budget.
    if self.auto:
      tile = 0
    if not budget_gb > 0:
      raise ValueError(f"Upscaler: budget_gb={budget_gb} (> 0 GB)")
    self.budget = budget_gb * 2**30
    self._bytes_per_pixel: float | None = None
    self._said: set[tile_plan.Plan] = set()
    if tile < 0 or batch_size < 1 or (overlap is not None and overlap < 0):
      raise ValueError(f"Upscaler: tile={tile} (>= 0), overlap={overlap} (>= 0) and batch_size={batch_size} (>= 1)")
    self.graphdef, self.params = graphdef, params
    self.scale = model_cfg.scale
    self.channels = model_cfg.channels
    self.receptive_field = registry.receptive_field(model_cfg)
    self.min_side = registry.min_side(model_cfg)
    self.tile = tile
    self.overlap = registry.tile_overlap(model_cfg) if overlap is None else overlap
    self.grid = registry.window_grid(model_cfg)
    if self.grid > 1:  # Tiles on the model's window grid (see the module docstring).
      self.tile, self.overlap = (-(-v // self.grid) * self.grid for v in (self.tile, self.overlap))
    self.batch_size = batch_size
    self.self_ensemble = self_ensemble
    self.progress = progress
    # The weights cross the jit boundary as a list (flattened once here), not as an nnx.State flattened by
    # Python on every call (core/boundary.py).
    self._leaves, self._treedef = jax.tree.flatten(params)
    self._predict = jax.jit(boundary.over_leaves(functools.partial(registry.predict, graphdef=graphdef)),
                            static_argnames="treedef")

  def _run(self, batch: np.ndarray) -> np.ndarray:
    return np.asarray(self._predict(self._leaves, jnp.asarray(batch), treedef=self._treedef))

  def _full(self, lr: np.ndarray) -> np.ndarray:
    return self._run(lr[None])[0]

  def _in_batches(self, windows: np.ndarray, batch_size: int | None = None) -> np.ndarray:
    """Equal-size windows through the model ``batch_size`` at a time (a smaller last batch at its own size: a
    padded one computed copies, 4x the work and memory of one image alone)."""
    n = batch_size or self.batch_size
    return np.concatenate([self._run(windows[i:i + n]) for i in range(0, len(windows), n)])

  def bytes_per_pixel(self) -> float | None:
    """Memory of the forward pass per LR pixel (XLA's figure for a probe image: temporaries + output), measured
    once; None where the backend reports none."""
    if self._bytes_per_pixel is None:
      side = -(-max(tile_plan.PROBE, self.min_side) // self.grid) * self.grid
      probe = jax.ShapeDtypeStruct((1, side, side, self.channels), jnp.uint8)
      stats = self._predict.lower(self._leaves, probe, treedef=self._treedef).compile().memory_analysis()
      self._bytes_per_pixel = 0.0 if stats is None else \
          (stats.temp_size_in_bytes + stats.output_size_in_bytes) / side**2
    return self._bytes_per_pixel or None

  def plan(self, h: int, w: int) -> tile_plan.Plan:
    """How this image runs: the user's tile, or auto's choice (see the module docstring)."""
    if not self.planned:
      return tile_plan.Plan(self.tile, self.overlap, True, tile_plan.work(h, w, self.tile, self.overlap))
    per_pixel = self.bytes_per_pixel()
    if per_pixel is None:
      return tile_plan.Plan(CPU_TILE, self.overlap, True, tile_plan.work(h, w, CPU_TILE, self.overlap))
    p = tile_plan.plan(h, w, bytes_per_pixel=per_pixel, budget=self.budget, overlap=self.overlap, grid=self.grid)
    if p.tile and p not in self._said:
      self._said.add(p)
      logging.info("%dx%d LR: over the %.1f GB budget whole (%.2f GB), in tiles of %d overlapping by %d%s", w, h,
                   self.budget / 2**30, h * w * per_pixel / 2**30, p.tile, p.overlap,
                   "" if p.exact else f" (not the exact {self.overlap}: windows within the budget would then "
                   f"compute the image over {tile_plan.MAX_WORK:g} times; tiles may differ slightly from a "
                   "whole-image run; --tile=0 runs it whole)")
    return p

  def fits_one_window(self, shape: tuple[int, ...]) -> bool:
    """Whether an image of this (H, W[, C]) shape is processed whole in one call (so it can be batched): in one
    tile window, or (auto on a CPU) ``batch_size`` of them within the memory budget."""
    if self.planned:
      per_pixel = self.bytes_per_pixel()
      return per_pixel is not None and shape[0] * shape[1] * per_pixel * self.batch_size <= self.budget
    side = self.tile + 2 * self.overlap
    return self.tile > 0 and shape[0] <= side and shape[1] <= side

  def batch(self, lrs: list[np.ndarray]) -> list[np.ndarray]:
    """``[self(lr) for lr in lrs]`` for same-shape images, run together (self-ensemble included)."""
    xs = np.stack([color.to_channels(lr, self.channels) for lr in lrs])
    ks = range(8) if self.self_ensemble else (0,)
    total = 0.0
    for k in ks:
      out = self._in_batches(np.stack([np.ascontiguousarray(dihedral.apply(x, k)) for x in xs]))
      total = total + np.stack([dihedral.invert(o, k) for o in out])
    return list(total / len(ks))

  def _tiled(self, lr: np.ndarray, tile: int, m: int, batch_size: int) -> np.ndarray:
    h, w = lr.shape[:2]
    ph, pw = -h % self.grid, -w % self.grid
    if (ph or pw) and (tile + 2 * m < h or tile + 2 * m < w):
      padded = np.pad(lr, ((0, ph), (0, pw)) + ((0, 0),) * (lr.ndim - 2), mode="reflect")
      return self._tiled(padded, tile, m, batch_size)[:h * self.scale, :w * self.scale]
    s = self.scale
    win_h, win_w = min(h, tile + 2 * m), min(w, tile + 2 * m)
    if win_h == h and win_w == w:
      return self._full(lr)
    jobs = []  # (window top/left, core top/left, core size)
    for cy in range(0, h, tile):
      for cx in range(0, w, tile):
        ch, cw = min(tile, h - cy), min(tile, w - cx)
        wy = int(np.clip(cy - m, 0, h - win_h))
        wx = int(np.clip(cx - m, 0, w - win_w))
        jobs.append((wy, wx, cy, cx, ch, cw))
    out = np.zeros((h * s, w * s, self.channels), np.float32)
    chunks = range(0, len(jobs), batch_size)
    if self.progress and len(chunks) > 1:
      chunks = tqdm(chunks, desc="tiles", unit="batch", leave=False)
    for i in chunks:
      chunk = jobs[i:i + batch_size]
      preds = self._in_batches(np.stack([lr[wy:wy + win_h, wx:wx + win_w] for wy, wx, *_ in chunk]), batch_size)
      for (wy, wx, cy, cx, ch, cw), pred in zip(chunk, preds):
        oy, ox = (cy - wy) * s, (cx - wx) * s
        out[cy * s:(cy + ch) * s, cx * s:(cx + cw) * s] = pred[oy:oy + ch * s, ox:ox + cw * s]
    return out

  def _once(self, lr: np.ndarray) -> np.ndarray:
    try:
      p = self.plan(*lr.shape[:2])
      if not p.tile:
        return self._full(lr)
      return self._tiled(lr, p.tile, p.overlap, 1 if self.planned else self.batch_size)  # Planned: one per call.
    except Exception as e:  # An accelerator's out-of-memory error (jax raises JaxRuntimeError).
      smaller = [t for t in AUTO_TILES if self.tile == 0 or t < self.tile]
      if not (self.auto and not self.planned and _out_of_memory(e) and smaller):
        raise
      logging.warning("out of device memory with %s; retrying in tiles of %d LR pixels, one at a time",
                      f"tiles of {self.tile}" if self.tile else "the whole image", smaller[0])
      self.tile = -(-smaller[0] // self.grid) * self.grid
      self.batch_size = 1  # Windows this large fill the device one by one.
      return self._once(lr)

  def __call__(self, lr: np.ndarray) -> np.ndarray:
    lr = color.to_channels(lr, self.channels)
    if not self.self_ensemble:
      return self._once(lr)
    outs = [dihedral.invert(self._once(np.ascontiguousarray(dihedral.apply(lr, k))), k) for k in range(8)]
    return np.mean(outs, axis=0)


def upscale_image(upscaler: Upscaler, img: np.ndarray, alpha: np.ndarray | None = None) -> np.ndarray:
  """uint8 image (HxW gray or HxWx3) [+ alpha] -> uint8 upscaled image of the same layout."""
  return finish(upscaler(img), img, alpha, upscaler.scale)


def finish(sr_float: np.ndarray, img: np.ndarray, alpha: np.ndarray | None, scale: int) -> np.ndarray:
  """The model's float output for ``img`` as a uint8 image of ``img``'s layout, its alpha upscaled by bicubic."""
  sr = imresize.to_uint8(sr_float)
  if img.ndim == 2:  # Gray in, gray out.
    sr = sr[..., 0] if sr.shape[-1] == 1 else imresize.to_uint8(color.rgb_to_luma(sr), peak=255.0)
  if alpha is not None:
    a = imresize.to_uint8(imresize.imresize(alpha / 255.0, scale))
    sr = np.concatenate([sr if sr.ndim == 3 else sr[..., None], a[..., None]], axis=-1)
  return sr
