"""PSNR and SSIM exactly as the super-resolution papers compute them.

Protocol (see docs/evaluation.md "Protocol"): both images are uint8 (the SR output clipped and rounded first),
scored on the Y channel of MATLAB ``rgb2ycbcr`` (16-235 range, not rounded, as BasicSR and the authors' scripts
do) or on their own values when the ground truth is grayscale, with ``shave`` pixels (the scale) removed from
every border. PSNR uses peak 255; SSIM is Wang et al. 2004 (Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03,
'valid' filtering).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from sr_jax.image import color

def _check_pair(sr: np.ndarray, hr: np.ndarray) -> None:
  if sr.shape[:2] != hr.shape[:2]:
    raise ValueError(f"SR {sr.shape[:2]} and HR {hr.shape[:2]} differ in size")
  for name, a in (("SR", sr), ("HR", hr)):
    if a.dtype != np.uint8:
      raise TypeError(f"{name} must be uint8 (clip and round first: imresize.to_uint8), got {a.dtype}")


def scoring_channels(sr: np.ndarray, hr: np.ndarray, mode: str = "y") -> tuple[np.ndarray, np.ndarray]:
  """Returns the float arrays that are compared: Y/Y, gray/gray or RGB/RGB."""
  _check_pair(sr, hr)
  if color.is_gray(hr):
    hr_c = hr.reshape(hr.shape[:2]).astype(np.float64)
    sr_c = sr.reshape(sr.shape[:2]).astype(np.float64) if color.is_gray(sr) else color.rgb_to_luma(sr)
    return sr_c, hr_c
  if color.is_gray(sr):
    raise ValueError("SR is gray but the ground truth is colour")
  if mode == "y":
    return color.rgb_to_y(sr), color.rgb_to_y(hr)
  if mode == "rgb":
    return sr[..., :3].astype(np.float64), hr[..., :3].astype(np.float64)
  raise ValueError(f"unknown metric mode {mode!r}; accepted: 'y', 'rgb'")


def _shave(a: np.ndarray, shave: int) -> np.ndarray:
  if shave <= 0:
    return a
  if a.shape[0] <= 2 * shave or a.shape[1] <= 2 * shave:
    raise ValueError(f"image {a.shape[:2]} too small to shave {shave} pixels per border")
  return a[shave:-shave, shave:-shave]


def psnr_from_mse(mse: float, peak: float = 255.0) -> float:
  return float("inf") if mse == 0 else float(10.0 * np.log10(peak**2 / mse))


def psnr(sr: np.ndarray, hr: np.ndarray, shave: int = 0, mode: str = "y") -> float:
  """PSNR (dB, peak 255) between uint8 images; ``inf`` when they are identical."""
  a, b = (_shave(x, shave) for x in scoring_channels(sr, hr, mode))
  return psnr_from_mse(float(np.mean((a - b) ** 2)))


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
  x = np.arange(size) - (size - 1) / 2
  g = np.exp(-(x**2) / (2 * sigma**2))
  return g / g.sum()


def _ssim_channel(a: np.ndarray, b: np.ndarray) -> float:
  c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
  win = _gaussian_window()
  half = win.size // 2
  if min(a.shape) < win.size:
    raise ValueError(f"SSIM needs at least {win.size}x{win.size} pixels after shaving, got {a.shape}")

  def filt(x):  # Separable Gaussian, 'valid' region only (MATLAB filter2(..., 'valid')).
    x = ndimage.correlate1d(x, win, axis=0, mode="constant")
    x = ndimage.correlate1d(x, win, axis=1, mode="constant")
    return x[half:-half, half:-half]

  mu_a, mu_b = filt(a), filt(b)
  var_a = filt(a * a) - mu_a**2
  var_b = filt(b * b) - mu_b**2
  cov = filt(a * b) - mu_a * mu_b
  ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
  return float(ssim_map.mean())


def ssim(sr: np.ndarray, hr: np.ndarray, shave: int = 0, mode: str = "y") -> float:
  """SSIM of Wang et al. (2004) on uint8 images; RGB mode averages the per-channel SSIM."""
  a, b = (_shave(x, shave) for x in scoring_channels(sr, hr, mode))
  if a.ndim == 2:
    return _ssim_channel(a, b)
  return float(np.mean([_ssim_channel(a[..., c], b[..., c]) for c in range(a.shape[-1])]))
