"""Pixel losses on [0, 1] RGB images: L1, MSE, Charbonnier, SSIM, MS-SSIM.

``ssim_loss`` is 1 - SSIM with BasicSR's differentiable SSIM (``basicsr/metrics/psnr_ssim.py`` ``_ssim_pth``:
Gaussian window 11, sigma 1.5, 'valid' filtering, each RGB channel apart, K1 0.01, K2 0.03), the per-image mean
averaged over the batch; on [0, 1] pixels, so C1 = 0.01², C2 = 0.03² (BasicSR scales the images by 255 and the
constants with them: the same value). ``ms_ssim_loss`` is 1 - MS-SSIM (Wang, Simoncelli, Bovik 2003) as
``pytorch_msssim.ms_ssim`` computes it: 5 scales weighted 0.0448, 0.2856, 0.3001, 0.2363, 0.1333, the contrast-
structure term (clipped at 0) of the first four and the SSIM of the last, per channel, 2x2 average pooling
between scales (zero-padded on odd sides, the pad counted); it needs a side above 160 pixels.
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


MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
MS_SSIM_MIN_SIDE = (SSIM_WINDOW - 1) * 2 ** (len(MS_SSIM_WEIGHTS) - 1) + 1  # 161.


def _ssim_and_cs(pred: jax.Array, target: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(N, C) SSIM and contrast-structure term of NHWC images in [0, 1], each the mean over valid positions."""
  c1, c2 = 0.01 ** 2, 0.03 ** 2
  mu1, mu2 = _gaussian_filter(pred), _gaussian_filter(target)
  var1 = _gaussian_filter(pred * pred) - mu1 * mu1
  var2 = _gaussian_filter(target * target) - mu2 * mu2
  cov = _gaussian_filter(pred * target) - mu1 * mu2
  cs = (2 * cov + c2) / (var1 + var2 + c2)
  ssim_map = (2 * mu1 * mu2 + c1) / (mu1 * mu1 + mu2 * mu2 + c1) * cs
  return jnp.mean(ssim_map, axis=(1, 2)), jnp.mean(cs, axis=(1, 2))


def ssim(pred: jax.Array, target: jax.Array) -> jax.Array:
  """(N,) SSIM of NHWC images in [0, 1], the mean over valid positions and channels."""
  return jnp.mean(_ssim_and_cs(pred, target)[0], axis=-1)


def ssim_loss(pred: jax.Array, target: jax.Array) -> jax.Array:
  return 1.0 - jnp.mean(ssim(pred, target))


def _avg_pool2(x: jax.Array) -> jax.Array:
  """torch's avg_pool2d(kernel 2, padding = side % 2): zero padding on odd sides, counted in the mean."""
  ph, pw = x.shape[1] % 2, x.shape[2] % 2
  x = jnp.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
  h, w = x.shape[1] // 2 * 2, x.shape[2] // 2 * 2
  x = x[:, :h, :w]
  return x.reshape(x.shape[0], h // 2, 2, w // 2, 2, x.shape[3]).mean(axis=(2, 4))


def ms_ssim(pred: jax.Array, target: jax.Array) -> jax.Array:
  """(N,) MS-SSIM of NHWC images in [0, 1] (both sides at least MS_SSIM_MIN_SIDE)."""
  if min(pred.shape[1:3]) < MS_SSIM_MIN_SIDE:
    raise ValueError(f"MS-SSIM needs images of at least {MS_SSIM_MIN_SIDE}x{MS_SSIM_MIN_SIDE}, got {pred.shape[1:3]}")
  factors = []
  for i, w in enumerate(MS_SSIM_WEIGHTS):
    s, cs = _ssim_and_cs(pred, target)
    last = i == len(MS_SSIM_WEIGHTS) - 1
    factors.append(jax.nn.relu(s if last else cs) ** w)
    if not last:
      pred, target = _avg_pool2(pred), _avg_pool2(target)
  return jnp.mean(jnp.prod(jnp.stack(factors), axis=0), axis=-1)


def ms_ssim_loss(pred: jax.Array, target: jax.Array) -> jax.Array:
  return 1.0 - jnp.mean(ms_ssim(pred, target))
