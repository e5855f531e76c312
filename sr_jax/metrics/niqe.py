"""NIQE (Mittal et al., "Making a completely blind image quality analyzer", IEEE SPL 2013), as MATLAB computes it.

No reference image: the lower, the more natural the image's local statistics. Protocol (BasicSR's
``calculate_niqe``, which reproduces MATLAB's ``niqe``): the Y channel of MATLAB ``rgb2ycbcr`` (a gray image on its
own values), ``crop_border`` pixels removed from every edge, rounded to integers; the image cropped to whole
96x96 blocks; at two scales (the second a MATLAB-bicubic half-size resize) each block's mean-subtracted
contrast-normalised coefficients (7x7 Gaussian window) give 18 features (asymmetric generalised Gaussian fits
of the coefficients and of their products with 4 neighbours); the 36-dimensional block features are fitted by a
Gaussian and compared with the pristine model of MATLAB's release (``sr_jax/assets/niqe_pris_params.npz``):
NIQE = sqrt((mu_p - mu_d)^T ((Sigma_p + Sigma_d) / 2)^+ (mu_p - mu_d)).
"""

from __future__ import annotations

import functools
import os

import numpy as np
from scipy import ndimage, special

from sr_jax.image import color, imresize

PARAMS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets", "niqe_pris_params.npz")
BLOCK = 96  # The block size of MATLAB's pristine model.
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))  # Horizontal, vertical and the two diagonal neighbours.
_ALPHAS = np.arange(0.2, 10.001, 0.001)  # The grid the AGGD shape is searched on (MATLAB's).
_RATIOS = special.gamma(2 / _ALPHAS) ** 2 / (special.gamma(1 / _ALPHAS) * special.gamma(3 / _ALPHAS))


@functools.lru_cache(maxsize=1)
def pristine_model() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(mean 36, covariance 36x36, 7x7 Gaussian window) of MATLAB's pristine model."""
  with np.load(PARAMS) as p:
    return p["mu_pris_param"][0], p["cov_pris_param"], p["gaussian_window"]


def aggd_fit(x: np.ndarray) -> tuple[float, float, float]:
  """(shape alpha, left scale, right scale) of an asymmetric generalised Gaussian fitted by moment matching."""
  x = x.ravel()
  neg, pos = x[x < 0], x[x > 0]  # A flat block lacks one side: its features are NaN, and niqe drops the block.
  left = np.sqrt(np.mean(neg ** 2)) if neg.size else np.nan
  right = np.sqrt(np.mean(pos ** 2)) if pos.size else np.nan
  g = left / right
  with np.errstate(invalid="ignore", divide="ignore"):
    r = np.mean(np.abs(x)) ** 2 / np.mean(x ** 2)
  r_norm = r * (g ** 3 + 1) * (g + 1) / (g ** 2 + 1) ** 2
  alpha = _ALPHAS[np.argmin((_RATIOS - r_norm) ** 2)]
  k = np.sqrt(special.gamma(1 / alpha) / special.gamma(3 / alpha))
  return float(alpha), float(left * k), float(right * k)


def block_features(block: np.ndarray) -> list[float]:
  """The 18 features of one block of normalised coefficients."""
  alpha, bl, br = aggd_fit(block)
  feats = [alpha, (bl + br) / 2]
  for shift in _SHIFTS:
    alpha, bl, br = aggd_fit(block * np.roll(block, shift, axis=(0, 1)))
    mean = (br - bl) * special.gamma(2 / alpha) / special.gamma(1 / alpha)
    feats += [alpha, mean, bl, br]
  return feats


def niqe_of_luma(y: np.ndarray) -> float:
  """NIQE of a float HxW luma image in [0, 255] (already cropped and rounded)."""
  mu_p, cov_p, window = pristine_model()
  nh, nw = y.shape[0] // BLOCK, y.shape[1] // BLOCK
  if nh * nw < 2:
    raise ValueError(f"NIQE needs at least two {BLOCK}x{BLOCK} blocks; the image is {y.shape[1]}x{y.shape[0]}")
  # float32 for the first scale, as BasicSR computes (it matches MATLAB's 5.72957338 on the reference crop to
  # 3e-6; float64 throughout gives 5.72996).
  img = y[:nh * BLOCK, :nw * BLOCK].astype(np.float32)
  per_scale = []
  for scale in (1, 2):
    mu = ndimage.convolve(img, window, mode="nearest")
    sigma = np.sqrt(np.abs(ndimage.convolve(img * img, window, mode="nearest") - mu * mu))
    coeffs = (img - mu) / (sigma + 1)
    b = BLOCK // scale
    per_scale.append(np.array([block_features(coeffs[i * b:(i + 1) * b, j * b:(j + 1) * b])
                               for j in range(nw) for i in range(nh)]))
    img = imresize.imresize(img / 255.0, 0.5) * 255.0
  feats = np.concatenate(per_scale, axis=1)
  mu_d = np.nanmean(feats, axis=0)
  cov_d = np.cov(feats[~np.isnan(feats).any(axis=1)], rowvar=False)
  d = mu_p - mu_d
  return float(np.sqrt(d @ np.linalg.pinv((cov_p + cov_d) / 2) @ d))


def niqe(img: np.ndarray, crop_border: int = 0) -> float:
  """NIQE of a uint8 image (HxWx3 RGB scored on MATLAB Y, or HxW / HxWx1 gray), ``crop_border`` shaved first."""
  y = np.asarray(img, np.float64).reshape(img.shape[:2]) if color.is_gray(img) else color.rgb_to_y(img)
  if crop_border:
    y = y[crop_border:-crop_border, crop_border:-crop_border]
  return niqe_of_luma(np.round(y.astype(np.float32)))
