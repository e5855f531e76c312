"""The operations of Real-ESRGAN's degradation model on one float image (H, W, C) in [0, 1], in NumPy.

Each follows BasicSR's definition (``basicsr/data/degradations.py``, ``basicsr/utils/img_process_util.py`` and
``realesrgan_model.py``), the random draws coming from a ``numpy.random.Generator`` the caller seeds:

- ``filter2d``: correlation with a k x k kernel after reflect-padding k//2 (torch's 'reflect', no edge repeat);
- ``resize``: PyTorch ``F.interpolate`` semantics (align_corners=False, no antialiasing): 'area' (adaptive
  average pooling), 'bilinear', 'bicubic' (Keys a = -0.75, border pixels repeated);
- ``gaussian_noise`` / ``poisson_noise``: the noise to add (sigma on the 0-255 scale; Poisson with the image's
  number of distinct levels rounded up to a power of two, times ``scale``), colour or gray (one channel repeated);
- ``jpeg``: a real libjpeg round trip through Pillow at an integer quality (4:2:0 chroma), where Real-ESRGAN
  trains with a differentiable JPEG approximation (DiffJPEG) at a continuous quality;
- ``usm_sharp``: unsharp masking of the ground truth (weight 0.5, 51x51 Gaussian of sigma 8, threshold 10).
"""

from __future__ import annotations

import functools
import io

import numpy as np
from PIL import Image
from scipy import signal

RESIZE_MODES = ("area", "bilinear", "bicubic")


def filter2d(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
  """Correlates every channel with ``kernel`` (odd size), reflect padding; same size out (by FFT: a 21x21
  kernel on a 256² patch takes ~3 ms instead of ~100 ms directly)."""
  if kernel.shape[0] % 2 != 1:
    raise ValueError(f"kernel size must be odd, got {kernel.shape}")
  p = kernel.shape[0] // 2
  padded = np.pad(img, ((p, p), (p, p), (0, 0)), mode="reflect" if min(img.shape[:2]) > p else "symmetric")
  out = signal.fftconvolve(padded, kernel[::-1, ::-1, None].astype(np.float32), mode="valid", axes=(0, 1))
  return out.astype(np.float32)





@functools.lru_cache(maxsize=256)
def resize_matrix(n_in: int, n_out: int, mode: str, scale: float | None = None, cubic_a: float = -0.75
                  ) -> np.ndarray:
  """(n_out, n_in) weights of one axis; ``scale``: the scale_factor given to F.interpolate (None: a size);
  ``cubic_a``: the Keys cubic's parameter (PyTorch -0.75; TensorFlow's half-pixel bicubic -0.5)."""
  m = np.zeros((n_out, n_in), np.float64)
  if mode == "area":  # adaptive_avg_pool: bins [floor(i*n/N), ceil((i+1)*n/N)).
    for i in range(n_out):
      a, b = (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)
      m[i, a:b] = 1.0 / (b - a)
    return m
  ratio = 1.0 / scale if scale else n_in / n_out
  src = (np.arange(n_out) + 0.5) * ratio - 0.5
  if mode == "bilinear":
    src = np.maximum(src, 0.0)
    lo = np.floor(src).astype(int)
    frac = src - lo
    for i in range(n_out):
      m[i, min(lo[i], n_in - 1)] += 1 - frac[i]
      m[i, min(lo[i] + 1, n_in - 1)] += frac[i]
    return m
  a = cubic_a
  lo = np.floor(src).astype(int)
  taps = np.arange(-1, 3)
  x = np.abs((src - lo)[:, None] - taps)  # Distances to the 4 taps of each output pixel.
  weights = np.where(x <= 1, ((a + 2) * x - (a + 3)) * x * x + 1,
                     np.where(x < 2, ((a * x - 5 * a) * x + 8 * a) * x - 4 * a, 0.0))
  rows = np.repeat(np.arange(n_out), 4)
  np.add.at(m, (rows, np.clip(lo[:, None] + taps, 0, n_in - 1).ravel()), weights.ravel())  # Borders repeat.
  return m


def resize(img: np.ndarray, size: tuple[int, int], mode: str, scale: float | None = None) -> np.ndarray:
  """``img`` resized to ``size`` (h, w) like ``F.interpolate(..., mode)``; pass the ``scale`` factor when the
  size was computed from one (F.interpolate maps coordinates with 1/scale then)."""
  if mode not in RESIZE_MODES:
    raise ValueError(f"resize mode {mode!r}; accepted: {', '.join(RESIZE_MODES)}")
  h, w = size
  if (h, w) == img.shape[:2] and not scale:
    return img
  my = resize_matrix(img.shape[0], h, mode, scale).astype(np.float32)
  mx = resize_matrix(img.shape[1], w, mode, scale).astype(np.float32)
  return _both_axes(my, img, mx)


def _both_axes(my: np.ndarray, img: np.ndarray, mx: np.ndarray) -> np.ndarray:
  """``my @ img @ mx.T`` per channel (einsum's contraction: faster here than two reshaped GEMMs)."""
  return np.einsum("ij,jkc,lk->ilc", my, img, mx, optimize=True)


def gaussian_noise(shape: tuple[int, ...], rng: np.random.Generator, sigma: float, gray: bool) -> np.ndarray:
  """Noise of standard deviation ``sigma`` / 255; ``gray``: one plane repeated over the channels."""
  if gray:
    plane = rng.standard_normal(shape[:2], dtype=np.float32) * (sigma / 255.0)
    return np.repeat(plane[..., None], shape[2], axis=2)
  return rng.standard_normal(shape, dtype=np.float32) * (sigma / 255.0)


def _poisson(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  u8 = np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)
  levels = 2.0 ** np.ceil(np.log2(np.count_nonzero(np.bincount(u8.ravel(), minlength=256))))
  img = u8.astype(np.float32) / 255.0
  return (rng.poisson(img * levels) / levels - img).astype(np.float32)


def poisson_noise(img: np.ndarray, rng: np.random.Generator, scale: float, gray: bool) -> np.ndarray:
  """Shot noise of ``img`` times ``scale``; ``gray``: computed on the luma (0.299 R + 0.587 G + 0.114 B)."""
  if gray:
    luma = img[..., 0] * 0.299 + img[..., 1] * 0.587 + img[..., 2] * 0.114
    return np.repeat(_poisson(luma, rng)[..., None], img.shape[2], axis=2) * scale
  return _poisson(img, rng) * scale


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
  """A libjpeg encode/decode round trip (Pillow, baseline, 4:2:0) of the clipped, rounded image."""
  u8 = np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)
  buf = io.BytesIO()
  Image.fromarray(u8).save(buf, format="JPEG", quality=int(quality), subsampling=2)
  buf.seek(0)
  return np.asarray(Image.open(buf).convert("RGB"), np.float32) / 255.0


@functools.lru_cache(maxsize=4)
def _gaussian_1d(size: int, sigma: float = 0.0) -> np.ndarray:
  """cv2.getGaussianKernel: sigma <= 0 means 0.3 * ((size - 1) / 2 - 1) + 0.8."""
  sigma = sigma if sigma > 0 else 0.3 * ((size - 1) * 0.5 - 1) + 0.8
  x = np.arange(size) - (size - 1) / 2
  k = np.exp(-x * x / (2 * sigma * sigma))
  return k / k.sum()


@functools.lru_cache(maxsize=16)
def _reflect_matrix(n: int, size: int) -> np.ndarray:
  """(n, n) matrix of a 1-D correlation with the Gaussian taps of ``size`` under reflect padding."""
  taps, r = _gaussian_1d(size), size // 2
  m = np.zeros((n, n), np.float64)
  for i in range(n):
    for t in range(-r, r + 1):
      j = i + t
      while j < 0 or j >= n:  # Reflect (no edge repeat) until inside, also for kernels wider than the image.
        j = -j if j < 0 else 2 * (n - 1) - j
      m[i, j] += taps[t + r]
  return m.astype(np.float32)


def _separable(img: np.ndarray, size: int) -> np.ndarray:
  """filter2d with outer(g, g) (g: the Gaussian taps of ``size``) as two matrix products."""
  return _both_axes(_reflect_matrix(img.shape[0], size), img, _reflect_matrix(img.shape[1], size))


def usm_sharp(img: np.ndarray, weight: float = 0.5, radius: int = 50, threshold: float = 10) -> np.ndarray:
  """BasicSR's USMSharp: I + weight (I - blur) where |I - blur| exceeds ``threshold``/255, softly masked."""
  size = radius + 1 if radius % 2 == 0 else radius
  blur = _separable(img, size)  # outer(g, g) with g = cv2.getGaussianKernel(size, 0): BasicSR's 2-D kernel.
  residual = img - blur
  soft = _separable((np.abs(residual) * 255 > threshold).astype(np.float32), size)
  sharp = np.clip(img + weight * residual, 0, 1)
  return soft * sharp + (1 - soft) * img
