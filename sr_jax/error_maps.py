"""Error analysis images: per-image |HR - SR| heatmaps on Y and best/worst patch contact sheets."""

from __future__ import annotations

import os

import numpy as np

from PIL import Image

from sr_jax import color, metrics
from sr_jax.eval_lib import TestPair


def _y(img: np.ndarray) -> np.ndarray:
  return img.astype(np.float64) if img.ndim == 2 else color.rgb_to_y(img)


def save_heatmap(path: str, hr: np.ndarray, sr: np.ndarray, vmax: float = 32.0) -> None:
  """|HR - SR| on Y (0 .. vmax gray levels) with the inferno colour map, as a PNG of the image's size."""
  from matplotlib import colormaps  # matplotlib is imported only when figures are made.
  err = np.abs(_y(hr) - _y(sr)) / vmax
  rgb = (colormaps["inferno"](np.clip(err, 0, 1))[..., :3] * 255).astype(np.uint8)
  Image.fromarray(rgb).save(path)


def patch_scores(pair: TestPair, sr: np.ndarray, patch: int, scale: int, min_std: float = 12.0
                 ) -> list[tuple[float, int, int]]:
  """(PSNR on Y, top, left) of each non-overlapping HR patch inside the shaved border.

  Flat patches (HR standard deviation below ``min_std`` gray levels) are left out: every method is perfect
  there, and they would crowd out the informative "best" patches.
  """
  a, b = _y(sr), _y(pair.hr)
  h, w = a.shape
  out = []
  for top in range(scale, h - scale - patch + 1, patch):
    for left in range(scale, w - scale - patch + 1, patch):
      ref = b[top:top + patch, left:left + patch]
      if ref.std() < min_std:
        continue
      mse = float(np.mean((a[top:top + patch, left:left + patch] - ref) ** 2))
      out.append((metrics.psnr_from_mse(mse), top, left))
  return out


def save_contact_sheet(path: str, title: str, items: list[tuple[float, str, TestPair, np.ndarray, int, int]],
                       patch: int, count: int = 6) -> None:
  """Rows of HR | bicubic | SR patches: the ``count`` best and ``count`` worst by SR PSNR."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  ranked = sorted(items, key=lambda t: t[0])
  finite = [t for t in ranked if np.isfinite(t[0])] or ranked
  rows = [("worst", t) for t in finite[:count]] + [("best", t) for t in finite[::-1][:count]]
  fig, axes = plt.subplots(len(rows), 3, figsize=(6, 2.1 * len(rows)), squeeze=False, layout="constrained")
  for r, (kind, (score, name, pair, sr, top, left)) in enumerate(rows):
    crops = [color.gray_to_rgb(x)[top:top + patch, left:left + patch] for x in (pair.hr, pair.bicubic, sr)]
    bic_mse = np.mean((_y(pair.bicubic[top:top + patch, left:left + patch])
                       - _y(pair.hr[top:top + patch, left:left + patch])) ** 2)
    labels = [f"{kind}: {name}\nHR ({top},{left})", f"bicubic {metrics.psnr_from_mse(float(bic_mse)):.2f} dB",
              f"SR {score:.2f} dB"]
    for c, (crop, label) in enumerate(zip(crops, labels)):
      axes[r, c].imshow(crop, interpolation="nearest")
      axes[r, c].set_title(label, fontsize=7)
      axes[r, c].axis("off")
  fig.suptitle(title, fontsize=9)
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  fig.savefig(path, dpi=100)
  plt.close(fig)
