"""Pixel losses on [0, 1] RGB images: L1, MSE, Charbonnier, SSIM.

``ssim_loss`` is 1 - SSIM with BasicSR's differentiable SSIM (``basicsr/metrics/psnr_ssim.py`` ``_ssim_pth``:
Gaussian window 11, sigma 1.5, 'valid' filtering, each RGB channel apart, K1 0.01, K2 0.03), the per-image mean
averaged over the batch; on [0, 1] pixels, so C1 = 0.01², C2 = 0.03² (BasicSR scales the images by 255 and the
constants with them: the same value).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

CRITERIA: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
    "l1": lambda a, b: jnp.mean(jnp.abs(a - b)),
    "mse": lambda a, b: jnp.mean(jnp.square(a - b)),
}
SSIM_WINDOW = 11


def charbonnier(pred: jax.Array, target: jax.Array, eps: float) -> jax.Array:
  return jnp.mean(jnp.sqrt(jnp.square(pred - target) + eps * eps))


def _gaussian_filter(x: jax.Array) -> jax.Array:
  """Depthwise 'valid' 11x11 Gaussian (sigma 1.5) of NHWC ``x``."""
  t = np.arange(SSIM_WINDOW) - (SSIM_WINDOW - 1) / 2
  g = np.exp(-(t ** 2) / (2 * 1.5 ** 2))
  g = g / g.sum()
  c = x.shape[-1]
  kernel = jnp.asarray(np.tile(np.outer(g, g)[:, :, None, None], (1, 1, 1, c)), x.dtype)
  return jax.lax.conv_general_dilated(x, kernel, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                      feature_group_count=c)


def ssim(pred: jax.Array, target: jax.Array) -> jax.Array:
  """(N,) SSIM of NHWC images in [0, 1], the mean over valid positions and channels."""
  c1, c2 = 0.01 ** 2, 0.03 ** 2
  mu1, mu2 = _gaussian_filter(pred), _gaussian_filter(target)
  var1 = _gaussian_filter(pred * pred) - mu1 * mu1
  var2 = _gaussian_filter(target * target) - mu2 * mu2
  cov = _gaussian_filter(pred * target) - mu1 * mu2
  cs = (2 * cov + c2) / (var1 + var2 + c2)
  return jnp.mean((2 * mu1 * mu2 + c1) / (mu1 * mu1 + mu2 * mu2 + c1) * cs, axis=(1, 2, 3))


def ssim_loss(pred: jax.Array, target: jax.Array) -> jax.Array:
  return 1.0 - jnp.mean(ssim(pred, target))
