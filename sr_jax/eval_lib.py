"""Scoring SR against HR the papers' way, shared by in-training validation and ``sr_jax.evaluate``.

``prepare`` turns HR images into the papers' test pairs (modcrop, LR = MATLAB bicubic rounded to uint8) and
scores the bicubic baseline once; ``score_set`` runs any ``upscale(lr_uint8) -> sr`` function (float, [0, 1]
scale) over them.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from sr_jax import imresize, metrics
from sr_jax.datasets import ImageSet


@dataclasses.dataclass
class TestPair:
  name: str
  hr: np.ndarray  # uint8, modcropped; HxW when the ground truth is gray.
  lr: np.ndarray  # uint8 HxWx3 model input (gray replicated to RGB).
  bicubic: np.ndarray  # uint8, MATLAB bicubic up-scaling of lr, same layout as hr.
  bicubic_psnr: float
  bicubic_ssim: float


def as_rgb(img: np.ndarray) -> np.ndarray:
  return np.repeat(img[..., None], 3, axis=-1) if img.ndim == 2 else img


def min_eval_size(scale: int) -> int:
  """Smallest HR side that survives the shave and the 11x11 SSIM window."""
  return 2 * scale + 11 + scale


def prepare(image_set: ImageSet, scale: int, max_images: int = 0) -> list[TestPair]:
  pairs = []
  count = len(image_set) if max_images <= 0 else min(max_images, len(image_set))
  for i in range(count):
    hr = imresize.modcrop(image_set.get(i), scale)
    lr = imresize.downscale_uint8(as_rgb(hr), scale)
    bic = imresize.to_uint8(imresize.imresize(lr / 255.0, scale))
    bic = bic if hr.ndim == 3 else bic[..., 0]  # Gray in -> R = G = B out.
    pairs.append(TestPair(image_set.names[i], hr, lr, bic, metrics.psnr(bic, hr, shave=scale),
                          metrics.ssim(bic, hr, shave=scale)))
  return pairs


def score_set(pairs: list[TestPair], upscale: Callable[[np.ndarray], np.ndarray], scale: int,
              keep_outputs: int = 0) -> tuple[dict, list[dict], list[np.ndarray]]:
  """Returns (summary, per-image rows, the first ``keep_outputs`` uint8 SR images)."""
  rows, outputs = [], []
  for k, pair in enumerate(pairs):
    sr = imresize.to_uint8(upscale(pair.lr))
    if sr.shape[:2] != pair.hr.shape[:2]:
      raise ValueError(f"{pair.name}: upscaled to {sr.shape[:2]}, expected {pair.hr.shape[:2]}")
    if pair.hr.ndim == 2 and sr.ndim == 3 and sr.shape[-1] == 1:
      sr = sr[..., 0]
    rows.append({"image": pair.name, "psnr": metrics.psnr(sr, pair.hr, shave=scale),
                 "ssim": metrics.ssim(sr, pair.hr, shave=scale), "bicubic_psnr": pair.bicubic_psnr,
                 "bicubic_ssim": pair.bicubic_ssim})
    if k < keep_outputs:
      outputs.append(sr)
  return summarize(rows), rows, outputs


def summarize(rows: list[dict]) -> dict:
  """Mean of each metric over images (PSNR averaged in dB, as the papers do)."""
  keys = ("psnr", "ssim", "bicubic_psnr", "bicubic_ssim")
  summary = {k: float(np.mean([r[k] for r in rows])) for k in keys}
  summary["num_images"] = len(rows)
  return summary


def triplet(pair: TestPair, sr: np.ndarray, size: int = 192) -> np.ndarray:
  """HR | bicubic | SR side by side (uint8 RGB), a centre crop of at most ``size`` pixels."""
  h, w = pair.hr.shape[:2]
  t, l = max(0, (h - size) // 2), max(0, (w - size) // 2)
  crop = lambda x: as_rgb(x)[t:t + size, l:l + size]
  return np.concatenate([crop(pair.hr), crop(pair.bicubic), crop(sr)], axis=1)
