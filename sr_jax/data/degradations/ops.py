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
  number of distinct levels rounded up to a power of two, times ``scale``, drawn by ``poisson.sample``), colour
  or gray (one channel repeated);
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

from sr_jax.data.degradations import poisson

RESIZE_MODES = ("area", "bilinear", "bicubic")


def planes(img: np.ndarray) -> np.ndarray:
  """8-bit (H, W, C) -> float32 (C, H, W) in [0, 1]."""
  out = np.empty(img.shape[2:] + img.shape[:2], np.float32)
  return np.divide(np.moveaxis(img, -1, 0), np.float32(255.0), out=out)


def to_uint8(x: np.ndarray) -> np.ndarray:
  """float (C, H, W) in [0, 1] -> 8-bit (H, W, C), rounded like a saved image."""
  y = x * np.float32(255.0)
  np.clip(np.rint(y, out=y), 0, 255, out=y)
  out = np.empty(x.shape[1:] + x.shape[:1], np.uint8)
  np.copyto(out, np.moveaxis(y, 0, -1), casting="unsafe")
  return out


def filter2d(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
  """Correlates every plane with ``kernel`` (odd size), reflect padding; same size out.

  Real-ESRGAN's kernels are zero-padded to 21 x 21: the zero border is dropped first (it changes nothing), and
  the identity pulse returns the image. A kernel that is a sum of at most ``_max_rank`` outer products (to 1e-6
  in the sum of absolute differences, so to 1e-6 on an image in [0, 1]: isotropic Gaussians have one term, a
  few rotated ones 2 or 3, most 4 to 9) is two banded products a term; any other goes by FFT, circular at a
  fast length >= the padded size, which leaves the valid part exact (a 21 x 21 kernel on a 256² patch: ~3 ms
  instead of ~100 ms directly).
  """
  if kernel.shape[0] % 2 != 1:
    raise ValueError(f"kernel size must be odd, got {kernel.shape}")
  mode = "reflect" if min(img.shape[1:]) > kernel.shape[0] // 2 else "symmetric"  # Torch's reflect needs pad < n.
  kernel = _trimmed(kernel)
  p = kernel.shape[0] // 2
  if p == 0:
    return img * np.float32(kernel[0, 0])
  terms = _outer_terms(kernel, _max_rank(img.shape[1] * img.shape[2])) if mode == "reflect" else []
  if terms:
    out = _correlate(img, *terms[0])
    for col, row in terms[1:]:
      out += _correlate(img, col, row)
    return out
  padded = np.pad(img, ((0, 0), (p, p), (p, p)), mode=mode)
  hp, wp = padded.shape[1:]
  shape = (sfft.next_fast_len(hp, True), sfft.next_fast_len(wp, True))
  spectrum = sfft.rfft2(padded, shape)
  spectrum *= sfft.rfft2(kernel[::-1, ::-1].astype(np.float32), shape)
  return sfft.irfft2(spectrum, shape)[:, 2 * p:hp, 2 * p:wp].astype(np.float32)


def _trimmed(kernel: np.ndarray) -> np.ndarray:
  """``kernel`` without its all-zero outer rings."""
  k = kernel.shape[0]
  nonzero = np.flatnonzero(np.any(kernel != 0, axis=0) | np.any(kernel != 0, axis=1))
  ring = min(int(nonzero[0]), k - 1 - int(nonzero[-1])) if nonzero.size else k // 2
  return kernel[ring:k - ring, ring:k - ring]


def _max_rank(pixels: int) -> int:
  """How many banded terms cost less than one FFT blur: on the CI machine (worker processes' malloc settings;
  kernels 7 to 21 wide) one term took 1.1-1.5 ms and the FFT 3.7-4.9 ms on 256², 0.4-0.7 vs 1.0-1.3 ms on 128²,
  0.16-0.18 vs 0.39-0.56 ms on 64²."""
  return 3 if pixels > 160 * 160 else 2


def _outer_terms(kernel: np.ndarray, max_rank: int) -> list[tuple[np.ndarray, np.ndarray]]:
  """[(column, row)] whose outer products sum to ``kernel`` within 1e-6 (L1), by SVD; [] if more than
  ``max_rank`` are needed."""
  u, s, vt = np.linalg.svd(kernel)
  for rank in range(1, min(max_rank, len(s)) + 1):
    if np.abs(kernel - (u[:, :rank] * s[:rank]) @ vt[:rank]).sum() <= 1e-6:
      return [(u[:, i] * s[i], vt[i]) for i in range(rank)]
  return []


@functools.lru_cache(maxsize=256)
def resize_matrix(n_in: int, n_out: int, mode: str, scale: float | None = None, cubic_a: float = -0.75
                  ) -> np.ndarray:
  """(n_out, n_in) weights of one axis; ``scale``: the scale_factor given to F.interpolate (None: a size);
  ``cubic_a``: the Keys cubic's parameter (PyTorch -0.75; TensorFlow's half-pixel bicubic -0.5)."""
  rows = np.arange(n_out)
  if mode == "area":  # adaptive_avg_pool: bins [floor(i*n/N), ceil((i+1)*n/N)).
    a, b = (rows * n_in) // n_out, -((-(rows + 1) * n_in) // n_out)
    cols = np.arange(n_in)
    return ((cols >= a[:, None]) & (cols < b[:, None])) / (b - a)[:, None].astype(np.float64)
  ratio = 1.0 / scale if scale else n_in / n_out
  src = (rows + 0.5) * ratio - 0.5
  if mode == "bilinear":
    src = np.maximum(src, 0.0)
    lo = np.floor(src).astype(int)
    frac = src - lo
    taps, weights = np.stack([lo, lo + 1], axis=1), np.stack([1 - frac, frac], axis=1)
  else:
    a = cubic_a
    lo = np.floor(src).astype(int)
    taps = lo[:, None] + np.arange(-1, 3)
    x = np.abs((src - lo)[:, None] - np.arange(-1, 3))  # Distances to the 4 taps of each output pixel.
    weights = np.where(x <= 1, ((a + 2) * x - (a + 3)) * x * x + 1,
                       np.where(x < 2, ((a * x - 5 * a) * x + 8 * a) * x - 4 * a, 0.0))
  flat = rows[:, None] * n_in + np.clip(taps, 0, n_in - 1)  # Borders repeat.
  return np.bincount(flat.ravel(), weights.ravel(), n_out * n_in).reshape(n_out, n_in)


_BLOCK = 32  # Rows a block: 32 + band columns a row (64 measured ~15 % slower on 256² patches).


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
  """A banded (n_out, n_in) matrix cut into row blocks of ``_BLOCK``, each with only the columns it touches:
  products cost ~(_BLOCK + band)/n_in of the dense one."""
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
  levels = 1 << int(np.ceil(np.log2(np.count_nonzero(np.bincount(u8.ravel(), minlength=256)))))
  noise = poisson.sample(u8, levels, rng).astype(np.float32)
  noise *= np.float32(1.0 / levels)  # A power of two: exact.
  noise -= u8.astype(np.float32) / np.float32(255.0)
  return noise


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
  return planes(np.asarray(Image.open(buf)))  # RGB in, RGB out.


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
  flat = (np.arange(n)[:, None] * n + j).ravel()
  return np.bincount(flat, np.tile(np.asarray(taps, np.float64), n), n * n).reshape(n, n).astype(np.float32)


def _correlate(img: np.ndarray, col: np.ndarray, row: np.ndarray) -> np.ndarray:
  """filter2d with the kernel outer(col, row) (odd lengths): a banded product along each axis."""
  return _along_w(_banded_blocks(_reflect_matrix(img.shape[2], row)),
                  _along_h(_banded_blocks(_reflect_matrix(img.shape[1], col)), img))


@functools.lru_cache(maxsize=16)
def _gaussian_blocks(n: int, size: int) -> tuple:
  return _banded_blocks(_reflect_matrix(n, _gaussian_1d(size)))


def _separable(img: np.ndarray, size: int) -> np.ndarray:
  """filter2d with outer(g, g) (g: the Gaussian taps of ``size``) as banded products along each axis (the
  blocks cached: USM blurs every patch with the same kernel)."""
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
