"""Scores a folder of SR images against a folder of references: the library behind ``sr-score``.

Matching: an SR file pairs with the reference of the same sub-folder and stem (an ``_HR``/``_LR`` marker dropped,
case ignored: ``sr_jax.data.paired.key``), or, failing that, with the longest reference stem it starts with
before a ``_`` or ``-`` (``baby_x4.png``, ``baby_x4_SR.png``, ``baby_out.png`` pair with ``baby.png``). Two SR
files claiming one reference are an error naming both; files of either side without a partner are listed.

Conventions (``Convention``): the papers' by default — PSNR/SSIM on MATLAB's Y (a gray reference: on gray), the
scale shaved from every border, the reference cropped to a multiple of the scale (MATLAB ``modcrop``) — or those
of the IQA references: ``channels='rgb'`` (PSNR/SSIM over R, G, B), ``'gray'`` (MATLAB ``rgb2gray``, rounded,
for PSNR, SSIM and NIQE), ``shave=0``. LPIPS and DISTS always see RGB. Each metric is the function
``sr-evaluate`` uses (``sr_jax.metrics``), so the same pairs give the same numbers.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Iterator

import numpy as np

from sr_jax import metrics
from sr_jax.core.errors import DataError
from sr_jax.data import paired
from sr_jax.image import color, image_io, imresize
from sr_jax.metrics import psnr_ssim

CHANNELS = ("y", "rgb", "gray")


@dataclasses.dataclass(frozen=True)
class Convention:
  shave: int = 0
  channels: str = "y"
  modcrop: int = 0  # Crop the reference to a multiple of this first (0: as it is).

  def __post_init__(self):
    if self.channels not in CHANNELS:
      raise ValueError(f"channels={self.channels!r}; accepted: {', '.join(CHANNELS)}")
    if self.shave < 0 or self.modcrop < 0:
      raise ValueError(f"shave={self.shave} and modcrop={self.modcrop} must be >= 0")


def match(sr_dir: str, hr_dir: str) -> tuple[list[tuple[str, str, str]], list[str], list[str]]:
  """([(name, sr_path, hr_path)], SR files without a reference, references without an SR file)."""
  refs = {}
  for path in image_io.list_images(hr_dir):
    refs.setdefault(paired.key(os.path.relpath(path, hr_dir)), path)
  pairs, lonely_sr, taken = [], [], {}
  for path in image_io.list_images(sr_dir):
    stem = paired.key(os.path.relpath(path, sr_dir))
    found = stem if stem in refs else max((k for k in refs if stem.startswith((k + "_", k + "-"))), key=len,
                                          default=None)
    if found is None:
      lonely_sr.append(path)
    elif found in taken:
      raise DataError(f"{taken[found]} and {path} both pair with the reference {refs[found]}; keep one of them in "
                      f"{sr_dir}")
    else:
      taken[found] = path
      pairs.append((os.path.relpath(refs[found], hr_dir), path, refs[found]))
  lonely_hr = [refs[k] for k in sorted(refs) if k not in taken]
  return sorted(pairs), lonely_sr, lonely_hr


def score_pair(sr: np.ndarray, hr: np.ndarray, convention: Convention,
               extra: dict[str, metrics.MetricFn]) -> dict[str, float]:
  """PSNR, SSIM and ``extra`` of one aligned uint8 pair under ``convention``."""
  s = convention.shave
  if convention.channels == "gray":
    g_sr, g_hr = color.rgb_to_gray_matlab(sr), color.rgb_to_gray_matlab(hr)
    row = {"psnr": metrics.psnr(g_sr, g_hr, shave=s), "ssim": metrics.ssim(g_sr, g_hr, shave=s)}
  elif convention.channels == "rgb" and not color.is_gray(hr):
    row = {"psnr": psnr_ssim.psnr(sr, hr, shave=s, mode="rgb"), "ssim": psnr_ssim.ssim(sr, hr, shave=s, mode="rgb")}
  else:
    row = {"psnr": metrics.psnr(sr, hr, shave=s), "ssim": metrics.ssim(sr, hr, shave=s)}
  for name, fn in extra.items():
    if name == "niqe" and convention.channels == "gray":
      row[name] = fn(color.rgb_to_gray_matlab(sr), color.rgb_to_gray_matlab(hr), s)
    else:
      row[name] = fn(sr, hr, s)
  return row


def _aligned(sr_path: str, hr_path: str, convention: Convention, max_pixels: int | None
             ) -> tuple[np.ndarray, np.ndarray]:
  sr = image_io.read_image(sr_path, keep_gray=True, max_pixels=max_pixels)
  hr = image_io.read_image(hr_path, keep_gray=True, max_pixels=max_pixels)
  if convention.modcrop > 1:
    hr = imresize.modcrop(hr, convention.modcrop)
  if sr.shape[:2] != hr.shape[:2]:
    crop = f" (cropped to a multiple of {convention.modcrop})" if convention.modcrop > 1 else ""
    raise DataError(f"{sr_path} is {sr.shape[1]}x{sr.shape[0]} but its reference {hr_path} is "
                    f"{hr.shape[1]}x{hr.shape[0]}{crop}")
  if color.is_gray(sr) and not color.is_gray(hr):
    raise DataError(f"{sr_path} is gray but its reference {hr_path} is colour")
  if not color.is_gray(hr) and sr.ndim == 3 and sr.shape[-1] == 4:
    sr = sr[..., :3]
  return sr, hr


def score(pairs: list[tuple[str, str, str]], convention: Convention, extra: dict[str, metrics.MetricFn],
          skipped: list[str], *, max_pixels: int | None = image_io.DEFAULT_MAX_PIXELS) -> Iterator[dict]:
  """One row per pair ({"image", "psnr", "ssim", *extra}); pairs that cannot be scored go to ``skipped`` with
  the reason (unreadable, sizes that differ, too small for the shave or SSIM's window)."""
  for name, sr_path, hr_path in pairs:
    try:
      sr, hr = _aligned(sr_path, hr_path, convention, max_pixels)
      yield {"image": name, **score_pair(sr, hr, convention, extra)}
    except (DataError, image_io.ImageReadError, ValueError) as e:
      skipped.append(str(e) if sr_path in str(e) else f"{sr_path}: {e}")
