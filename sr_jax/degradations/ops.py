"""The operations of Real-ESRGAN's degradation model on one float32 image in [0, 1], in NumPy.

Images are channel-first planes (C, H, W) here (``planes`` / ``to_uint8`` convert from and to 8-bit (H, W, C)):
blur and resize along either axis are then matrix products with no transposes (on a 256² patch the copies of
channel-last transposes cost as much as the products).

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
import scipy.fft as sfft
from PIL import Image

RESIZE_MODES = ("area", "bilinear", "bicubic")


def planes(img: np.ndarray) -> np.ndarray:
  """8-bit (H, W, C) -> float32 (C, H, W) in [0, 1]."""
  return np.ascontiguousarray(np.moveaxis(img, -1, 0), np.float32) / np.float32(255.0)


def to_uint8(x: np.ndarray) -> np.ndarray:
  """float (C, H, W) in [0, 1] -> 8-bit (H, W, C), rounded like a saved image."""
  return np.ascontiguousarray(np.moveaxis(np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8), 0, -1))


def filter2d(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
  """Correlates every plane with ``kernel`` (odd size), reflect padding; same size out. By FFT (a 21x21 kernel
  on a 256² patch: ~3 ms instead of ~100 ms directly), circular at a fast length >= the padded size, which
  leaves the valid part exact."""
  if kernel.shape[0] % 2 != 1:
    raise ValueError(f"kernel size must be odd, got {kernel.shape}")
  p = kernel.shape[0] // 2
  if min(img.shape[1:]) > p:
    u, s, vt = np.linalg.svd(kernel)
    if s[1] <= 1e-9 * s[0]:  # outer(column, row) (isotropic Gaussians): two banded products, no FFT.
      return _along_w(_correlation_blocks(img.shape[2], vt[0] * s[0]), _along_h(_correlation_blocks(
          img.shape[1], u[:, 0]), img))
  padded = np.pad(img, ((0, 0), (p, p), (p, p)), mode="reflect" if min(img.shape[1:]) > p else "symmetric")
  hp, wp = padded.shape[1:]
  shape = (sfft.next_fast_len(hp, True), sfft.next_fast_len(wp, True))
  spectrum = sfft.rfft2(padded, shape)
  spectrum *= sfft.rfft2(kernel[::-1, ::-1].astype(np.float32), shape)
  return sfft.irfft2(spectrum, shape)[:, 2 * p:hp, 2 * p:wp].astype(np.float32)


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


_BLOCK = 64


@functools.lru_cache(maxsize=256)
def _resize_blocks(n_in: int, n_out: int, mode: str, scale: float | None) -> tuple:
  return _banded_blocks(resize_matrix(n_in, n_out, mode, scale).astype(np.float32))


def resize(img: np.ndarray, size: tuple[int, int], mode: str, scale: float | None = None) -> np.ndarray:
  """``img`` resized to ``size`` (h, w) like ``F.interpolate(..., mode)``; pass the ``scale`` factor when the
  size was computed from one (F.interpolate maps coordinates with 1/scale then). Each axis is a banded matrix
  product (2 to ~8 taps a pixel), block by block."""
  if mode not in RESIZE_MODES:
    raise ValueError(f"resize mode {mode!r}; accepted: {', '.join(RESIZE_MODES)}")
  h, w = size
  if (h, w) == img.shape[1:] and not scale:
    return img
  out = _along_h(_resize_blocks(img.shape[1], h, mode, scale), img)
  return _along_w(_resize_blocks(img.shape[2], w, mode, scale), out)


def _banded_blocks(m: np.ndarray) -> tuple[tuple[int, int, int, int, np.ndarray], ...]:
  """A banded (n_out, n_in) matrix cut into row blocks of 64, each with only the columns it touches: products
  cost ~(64 + band)/n_in of the dense one."""
  blocks = []
  for r0 in range(0, m.shape[0], _BLOCK):
    cols = np.flatnonzero(m[r0:r0 + _BLOCK].any(axis=0))  # Never empty: every row of these matrices sums to 1.
    c0, c1 = int(cols[0]), int(cols[-1]) + 1
    blocks.append((r0, min(m.shape[0], r0 + _BLOCK), c0, c1, np.ascontiguousarray(m[r0:r0 + _BLOCK, c0:c1])))
  return tuple(blocks)


def _along_h(blocks: tuple, x: np.ndarray) -> np.ndarray:
  """``m @ plane`` for every plane of ``x`` (C, H, W); ``blocks``: ``_banded_blocks(m)``."""
  out = np.empty((x.shape[0], blocks[-1][1], x.shape[2]), np.float32)
  for r0, r1, c0, c1, block in blocks:
    np.matmul(block, x[:, c0:c1], out=out[:, r0:r1])
  return out


def _along_w(blocks: tuple, x: np.ndarray) -> np.ndarray:
  """``plane @ m.T`` for every plane of ``x`` (C, H, W)."""
  rows = x.reshape(-1, x.shape[2])
  out = np.empty((rows.shape[0], blocks[-1][1]), np.float32)
  for r0, r1, c0, c1, block in blocks:
    out[:, r0:r1] = rows[:, c0:c1] @ block.T
  return out.reshape(x.shape[0], x.shape[1], -1)


def gaussian_noise(shape: tuple[int, ...], rng: np.random.Generator, sigma: float, gray: bool) -> np.ndarray:
  """Noise of standard deviation ``sigma`` / 255 for planes of ``shape`` (C, H, W); ``gray``: one plane
  repeated over the channels."""
  if gray:
    plane = rng.standard_normal(shape[1:], dtype=np.float32) * np.float32(sigma / 255.0)
    return np.repeat(plane[None], shape[0], axis=0)
  return rng.standard_normal(shape, dtype=np.float32) * np.float32(sigma / 255.0)


def _poisson(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  u8 = np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)
  levels = 2.0 ** np.ceil(np.log2(np.count_nonzero(np.bincount(u8.ravel(), minlength=256))))
  img = u8.astype(np.float32) / 255.0
  return (rng.poisson(img * levels) / levels - img).astype(np.float32)


def poisson_noise(img: np.ndarray, rng: np.random.Generator, scale: float, gray: bool) -> np.ndarray:
  """Shot noise of ``img`` (C, H, W) times ``scale``; ``gray``: computed on the luma (0.299 R + 0.587 G +
  0.114 B)."""
  if gray:
    luma = img[0] * 0.299 + img[1] * 0.587 + img[2] * 0.114
    return np.repeat(_poisson(luma, rng)[None], img.shape[0], axis=0) * np.float32(scale)
  return _poisson(img, rng) * np.float32(scale)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
  """A libjpeg encode/decode round trip (Pillow, baseline, 4:2:0) of the clipped, rounded planes."""
  buf = io.BytesIO()
  Image.fromarray(to_uint8(img)).save(buf, format="JPEG", quality=int(quality), subsampling=2)
  buf.seek(0)
  return planes(np.asarray(Image.open(buf).convert("RGB")))


@functools.lru_cache(maxsize=4)
def _gaussian_1d(size: int, sigma: float = 0.0) -> np.ndarray:
  """cv2.getGaussianKernel: sigma <= 0 means 0.3 * ((size - 1) / 2 - 1) + 0.8."""
  sigma = sigma if sigma > 0 else 0.3 * ((size - 1) * 0.5 - 1) + 0.8
  x = np.arange(size) - (size - 1) / 2
  k = np.exp(-x * x / (2 * sigma * sigma))
  return k / k.sum()


def _reflect_matrix(n: int, taps: np.ndarray) -> np.ndarray:
  """(n, n) matrix of a 1-D correlation with ``taps`` (odd count) under reflect padding (no edge repeat),
  reflected again where the taps reach past the far side."""
  r = len(taps) // 2
  j = np.arange(n)[:, None] + np.arange(-r, r + 1)[None, :]
  if n > 1:
    j = np.abs(j) % (2 * (n - 1))
    j = np.where(j >= n, 2 * (n - 1) - j, j)
  else:
    j = np.zeros_like(j)
  m = np.zeros((n, n), np.float64)
  np.add.at(m, (np.repeat(np.arange(n), len(taps)), j.ravel()), np.tile(np.asarray(taps, np.float64), n))
  return m.astype(np.float32)


def _correlation_blocks(n: int, taps: np.ndarray) -> tuple:
  return _banded_blocks(_reflect_matrix(n, taps))


@functools.lru_cache(maxsize=16)
def _gaussian_blocks(n: int, size: int) -> tuple:
  return _correlation_blocks(n, _gaussian_1d(size))


def _separable(img: np.ndarray, size: int) -> np.ndarray:
  """filter2d with outer(g, g) (g: the Gaussian taps of ``size``) as banded products along each axis."""
  img = np.asarray(img, np.float32)
  return _along_w(_gaussian_blocks(img.shape[2], size), _along_h(_gaussian_blocks(img.shape[1], size), img))


def usm_sharp(img: np.ndarray, weight: float = 0.5, radius: int = 50, threshold: float = 10) -> np.ndarray:
  """BasicSR's USMSharp: I + weight (I - blur) where |I - blur| exceeds ``threshold``/255, softly masked."""
  size = radius + 1 if radius % 2 == 0 else radius
  residual = img - _separable(img, size)  # outer(g, g), g = cv2.getGaussianKernel(size, 0): BasicSR's kernel.
  soft = _separable(np.abs(residual) * 255 > threshold, size)
  # soft * clip(I + w r) + (1 - soft) * I, computed in place as I + soft * (clip(I + w r) - I).
  sharp = np.multiply(residual, weight, out=residual)
  sharp += img
  np.clip(sharp, 0, 1, out=sharp)
  sharp -= img
  sharp *= soft
  sharp += img
  return sharp
