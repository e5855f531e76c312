"""Aligned LR/HR folders (``paired:HR_DIR,LR_DIR``): files matched by name, checked for scale and colour.

Names match after dropping the usual HR/LR markers at the end of the file stem (case-insensitive):
``_HR``/``-hr``, ``_LR``/``_LR4``/``_LRx4``, ``x4`` (DIV2K's ``0001x4.png``), and the sub-folder path is kept, so
``HR/0001.png`` pairs with ``LR/0001x4.png``, ``Canon_001_HR.png`` with ``Canon_001_LR4.png``. Every file must
find its partner: unmatched names, two files claiming one name, an HR whose size is not the LR's times the
scale (an HR up to scale-1 pixels larger is cropped, as a modcrop), and a gray file paired with a colour one
are errors that name the files. Nothing is silently dropped.
"""

from __future__ import annotations

import os
import re
from typing import Iterator

import numpy as np

from sr_jax.core.errors import DataError
from sr_jax.image import color, image_io

_MARKER = re.compile(r"([_-]?(hr|lr(x?\d+)?|x\d+))$", re.IGNORECASE)


def parse(arg: str) -> tuple[str, str]:
  """'HR_DIR,LR_DIR' -> (hr_dir, lr_dir)."""
  parts = [p.strip() for p in arg.split(",")]
  if len(parts) != 2 or not all(parts):
    raise DataError(f"paired source 'paired:{arg}': give two folders, 'paired:HR_DIR,LR_DIR'")
  return parts[0], parts[1]


def key(rel_path: str) -> str:
  """The name a file pairs under: its sub-folder and stem without HR/LR markers, lower case."""
  folder, name = os.path.split(rel_path)
  stem = _MARKER.sub("", os.path.splitext(name)[0]) or os.path.splitext(name)[0]
  return os.path.join(folder, stem).lower()


def _keyed(folder: str, side: str) -> dict[str, str]:
  out: dict[str, str] = {}
  for path in image_io.list_images(folder):
    k = key(os.path.relpath(path, folder))
    if k in out:
      raise DataError(f"paired {side} folder {folder}: {out[k]} and {path} both pair under the name {k!r}")
    out[k] = path
  return out


def match(hr_dir: str, lr_dir: str) -> list[tuple[str, str, str]]:
  """(name, hr_path, lr_path) for every file of both folders; raises on any unmatched file."""
  hr, lr = _keyed(hr_dir, "HR"), _keyed(lr_dir, "LR")
  lonely_hr, lonely_lr = sorted(set(hr) - set(lr)), sorted(set(lr) - set(hr))
  if lonely_hr or lonely_lr:
    show = lambda side, names, files: (f"{len(names)} {side} file(s) without a partner: "
                                       + ", ".join(files[n] for n in names[:5]) + (" ..." if len(names) > 5 else ""))
    parts = ([show("HR", lonely_hr, hr)] if lonely_hr else []) + ([show("LR", lonely_lr, lr)] if lonely_lr else [])
    raise DataError(f"paired:{hr_dir},{lr_dir}: " + "; ".join(parts)
                    + " (names match after dropping _HR/_LR/_LR4/x4 markers from the stem)")
  return [(os.path.relpath(hr[k], hr_dir), hr[k], lr[k]) for k in sorted(hr)]


def check_pair(hr: np.ndarray, lr: np.ndarray, scale: int, hr_path: str, lr_path: str) -> np.ndarray:
  """The HR cropped to LR x scale; raises naming both files if sizes or colour do not agree."""
  if (hr.ndim == 2) != (lr.ndim == 2):
    gray, rgb = (hr_path, lr_path) if hr.ndim == 2 else (lr_path, hr_path)
    raise DataError(f"{gray} is gray but its partner {rgb} is colour; convert one of them")
  (h, w), (lh, lw) = hr.shape[:2], lr.shape[:2]
  if not (lh * scale <= h < (lh + 1) * scale and lw * scale <= w < (lw + 1) * scale):
    raise DataError(f"{hr_path} is {w}x{h} but its LR {lr_path} is {lw}x{lh}: not x{scale} (an HR of "
                    f"{lw * scale}x{lh * scale}, up to {scale - 1} px more, was expected)")
  return hr[:lh * scale, :lw * scale]


def iter_pairs(hr_dir: str, lr_dir: str, scale: int, *, keep_gray: bool = True,
               max_pixels: int | None = image_io.DEFAULT_MAX_PIXELS) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
  """(name, HR cropped to LR x scale, LR) of every matched pair, decoded one at a time."""
  for name, hr_path, lr_path in match(hr_dir, lr_dir):
    hr = image_io.read_image(hr_path, keep_gray=True, max_pixels=max_pixels)
    lr = image_io.read_image(lr_path, keep_gray=True, max_pixels=max_pixels)
    hr = check_pair(hr, lr, scale, hr_path, lr_path)
    if not keep_gray and hr.ndim == 2:
      hr, lr = color.gray_to_rgb(hr), color.gray_to_rgb(lr)
    yield name, hr, lr
