"""Error analysis images, with memory bounded whatever the set size: |HR - SR| heatmaps on Y and contact
sheets of the patches where the model gains most and least over bicubic.

``ErrorAnalysis`` sees one image at a time and keeps only what it will draw: the heatmaps of the ``worst``
images (lowest PSNR gain over bicubic; or every heatmap written at once with ``heatmaps='all'``) and the
``count`` best and worst patch crops. Heatmaps mirror the set's sub-folders (``heatmaps/<set>_x<s>/sub/a.png``);
every image is written atomically.
"""

from __future__ import annotations

import heapq
import itertools
import os

import numpy as np

from sr_jax import metrics
from sr_jax.core import atomic
from sr_jax.evaluation.eval_lib import TestPair
from sr_jax.image import color

HEATMAP_MODES = ("worst", "all", "none")


HEAT_VMAX = 32.0  # Gray levels at the top of the heatmaps' colour scale.


def _matplotlib():
  """(matplotlib, pyplot) on the file-only backend; imported when a figure is drawn (evaluation without
  heatmaps and sheets, as on a machine without matplotlib, never needs it)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return matplotlib, plt


def abs_error(hr: np.ndarray, sr: np.ndarray) -> np.ndarray:
  """|HR - SR| (float, gray levels) on the channel the papers score (``metrics.scoring_channels``: MATLAB Y, or
  the gray values of a gray ground truth against the SR's luma)."""
  sr_y, hr_y = metrics.scoring_channels(sr, hr)
  return np.abs(hr_y - sr_y)


def heatmap(hr: np.ndarray, sr: np.ndarray, vmax: float = HEAT_VMAX) -> np.ndarray:
  """``abs_error`` (0 .. vmax gray levels) in the inferno colour map, uint8 RGB of the image's size."""
  err = abs_error(hr, sr) / vmax
  matplotlib, _ = _matplotlib()
  return (matplotlib.colormaps["inferno"](np.clip(err, 0, 1))[..., :3] * 255).astype(np.uint8)


def save_with_colorbar(rgb: np.ndarray, path: str, title: str, vmax: float = HEAT_VMAX) -> None:
  """The heatmap at its own pixel size (dpi 100) with the colour scale beside it, in gray levels of Y."""
  h, w = rgb.shape[:2]
  fw, fh = w / 100 + 1.3, h / 100 + 0.4  # Figure size in inches: the image plus the colour bar's margin.
  matplotlib, plt = _matplotlib()
  fig = plt.figure(figsize=(fw, fh), dpi=100)
  ax = fig.add_axes((0.1 / fw, 0.1 / fh, w / 100 / fw, h / 100 / fh))
  ax.imshow(rgb, interpolation="nearest")
  ax.axis("off")
  ax.set_title(title, fontsize=7)
  cax = fig.add_axes(((w / 100 + 0.25) / fw, 0.15, 0.12 / fw, 0.7))
  bar = fig.colorbar(matplotlib.cm.ScalarMappable(matplotlib.colors.Normalize(0, vmax), "inferno"), cax=cax,
                     extend="max")
  bar.set_label("|HR - SR| on Y (gray levels)", fontsize=7)
  bar.ax.tick_params(labelsize=6)
  _save_figure(fig, path)


def _save_figure(fig, path: str) -> None:
  """A figure as PNG at ``path`` (atomically; its folder created: sets may have sub-folders)."""
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  try:
    with atomic.replace(path) as f:
      fig.savefig(f, dpi=100, format="png")
  finally:
    _matplotlib()[1].close(fig)


def patch_scores(pair: TestPair, sr: np.ndarray, patch: int, scale: int, min_std: float = 12.0
                 ) -> list[tuple[float, float, int, int]]:
  """(SR PSNR, bicubic PSNR, top, left) of each non-overlapping HR patch inside the shaved border, on the channel
  the headline PSNR scores (``metrics.scoring_channels``), so that the patches agree with it.

  Flat patches (HR standard deviation below ``min_std`` gray levels) are left out: every method is perfect
  there, and they would crowd out the informative ones.
  """
  (a, b), (c, _) = metrics.scoring_channels(sr, pair.hr), metrics.scoring_channels(pair.bicubic, pair.hr)
  h, w = a.shape
  out = []
  for top in range(scale, h - scale - patch + 1, patch):
    for left in range(scale, w - scale - patch + 1, patch):
      ref = b[top:top + patch, left:left + patch]
      if ref.std() < min_std:
        continue
      psnr = lambda x: metrics.psnr_from_mse(float(np.mean((x[top:top + patch, left:left + patch] - ref) ** 2)))
      out.append((psnr(a), psnr(c), top, left))
  return out


class ErrorAnalysis:
  """Heatmaps and the best/worst-patch contact sheet of one set at one scale, fed image by image."""

  def __init__(self, heat_dir: str, sheet_path: str | None, title: str, scale: int, *, heatmaps: str = "worst",
               worst: int = 5, count: int = 6):
    if heatmaps not in HEATMAP_MODES:
      raise ValueError(f"heatmaps={heatmaps!r}; accepted: {', '.join(HEATMAP_MODES)}")
    self.heat_dir, self.sheet_path, self.title, self.scale = heat_dir, sheet_path, title, scale
    self.mode, self.worst, self.count, self.patch = heatmaps, worst, count, 16 * scale
    self._heat: list = []  # Min-heap on -gain: the `worst` images with the lowest gain.
    self._best: list = []  # Min-heap on gain: the `count` best patches.
    self._low: list = []  # Min-heap on -gain: the `count` worst patches.
    self._tie = itertools.count()

  def add(self, pair: TestPair, sr: np.ndarray, gain_db: float) -> None:
    if self.mode == "all":
      self._save_heatmap(pair.name, heatmap(pair.hr, sr))
    elif self.mode == "worst" and (len(self._heat) < self.worst or -gain_db > self._heat[0][0]):
      self._push(self._heat, -gain_db, (pair.name, heatmap(pair.hr, sr)), self.worst)  # Drawn only if kept.
    p = self.patch
    for sr_db, bic_db, top, left in patch_scores(pair, sr, p, self.scale):
      crops = tuple(color.gray_to_rgb(x)[top:top + p, left:left + p].copy() for x in (pair.hr, pair.bicubic, sr))
      item = (pair.name, top, left, sr_db, bic_db, crops)
      # Ranked by gain over bicubic; equal gains (the bicubic baseline itself) by the SR PSNR.
      self._push(self._best, (sr_db - bic_db, sr_db), item, self.count)
      self._push(self._low, (bic_db - sr_db, -sr_db), item, self.count)

  def _push(self, heap: list, key, item, size: int) -> None:
    entry = (key, next(self._tie), item)
    if len(heap) < size:
      heapq.heappush(heap, entry)
    elif key > heap[0][0]:
      heapq.heapreplace(heap, entry)

  def _save_heatmap(self, name: str, rgb: np.ndarray) -> None:
    save_with_colorbar(rgb, os.path.join(self.heat_dir, os.path.splitext(name)[0] + ".png"), name)

  def finish(self) -> None:
    for _, _, (name, rgb) in self._heat:
      self._save_heatmap(name, rgb)
    low = [("least gain", e[2]) for e in sorted(self._low, reverse=True)]
    best = [("most gain", e[2]) for e in sorted(self._best, reverse=True)]
    if self.sheet_path and (low or best):
      self._save_sheet(low + best)

  def _save_sheet(self, rows: list) -> None:
    fig, axes = _matplotlib()[1].subplots(len(rows), 3, figsize=(6, 2.1 * len(rows)), squeeze=False, layout="constrained")
    for r, (kind, (name, top, left, sr_db, bic_db, crops)) in enumerate(rows):
      labels = [f"{kind}: {name}\nHR ({top},{left})", f"bicubic {bic_db:.2f} dB",
                f"SR {sr_db:.2f} dB ({sr_db - bic_db:+.2f})"]
      for c, (crop, label) in enumerate(zip(crops, labels)):
        axes[r, c].imshow(crop, interpolation="nearest")
        axes[r, c].set_title(label, fontsize=7)
        axes[r, c].axis("off")
    fig.suptitle(self.title, fontsize=9)
    _save_figure(fig, self.sheet_path)
