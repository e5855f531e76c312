"""MATLAB-compatible bicubic ``imresize``.

Reproduces ``imresize(img, scale, 'bicubic')`` of MATLAB: Keys cubic kernel (a = -0.5), the kernel widened by
``1/scale`` when shrinking (antialiasing), symmetric (mirror) border handling, and the height resized before the
width when the scales are equal. Each axis is a linear map, so a resize is ``W_h @ img @ W_w.T``; the weight
matrices depend only on the sizes and are cached. The same matrices serve NumPy (evaluation, baselines) and
TensorFlow (the tf.data pipeline), so the training LR patches and the evaluation LR images are made by one
definition.
"""

from __future__ import annotations

import functools

import numpy as np


def _cubic(x: np.ndarray) -> np.ndarray:
  absx = np.abs(x)
  absx2, absx3 = absx**2, absx**3
  return ((1.5 * absx3 - 2.5 * absx2 + 1) * (absx <= 1) +
          (-0.5 * absx3 + 2.5 * absx2 - 4 * absx + 2) * ((absx > 1) & (absx <= 2)))


@functools.lru_cache(maxsize=256)
def weight_matrix(in_size: int, out_size: int, scale: float | None = None) -> np.ndarray:
  """Returns the (out_size, in_size) float64 matrix of MATLAB's bicubic resize along one axis."""
  if in_size < 1 or out_size < 1:
    raise ValueError(f"imresize: sizes must be positive, got in={in_size} out={out_size}")
  scale = out_size / in_size if scale is None else scale
  kernel_width = 4.0
  if scale < 1:  # Antialiasing: stretch the kernel.
    kernel_width /= scale
  x = np.arange(1, out_size + 1, dtype=np.float64)
  u = x / scale + 0.5 * (1 - 1 / scale)
  left = np.floor(u - kernel_width / 2)
  taps = int(np.ceil(kernel_width)) + 2
  indices = left[:, None] + np.arange(taps)[None, :]  # 1-based, may fall outside [1, in_size].
  dist = u[:, None] - indices
  weights = scale * _cubic(scale * dist) if scale < 1 else _cubic(dist)
  weights /= weights.sum(axis=1, keepdims=True)
  # Symmetric padding: mirror out-of-range indices back into the image.
  aux = np.concatenate([np.arange(in_size), np.arange(in_size - 1, -1, -1)])
  idx = aux[np.mod(indices.astype(np.int64) - 1, aux.size)]
  matrix = np.zeros((out_size, in_size), dtype=np.float64)
  np.add.at(matrix, (np.repeat(np.arange(out_size), taps), idx.ravel()), weights.ravel())
  return matrix


def output_size(size: tuple[int, int], scale: float) -> tuple[int, int]:
  """MATLAB's output size for a scale factor: ceil(size * scale)."""
  return tuple(int(np.ceil(s * scale - 1e-9)) for s in size)  # type: ignore[return-value]


def imresize(img: np.ndarray, scale: float | None = None, output_shape: tuple[int, int] | None = None
             ) -> np.ndarray:
  """Resizes an HxW or HxWxC float image like MATLAB's ``imresize(img, scale, 'bicubic')``.

  Works in float64 and returns float64; callers round/clip (``to_uint8``) when they need what a saved image
  would hold. Give either ``scale`` (e.g. 1/2, 3) or ``output_shape`` (rows, cols).
  """
  img = np.asarray(img, dtype=np.float64)
  if img.ndim not in (2, 3):
    raise ValueError(f"imresize expects HxW or HxWxC, got shape {img.shape}")
  if (scale is None) == (output_shape is None):
    raise ValueError("imresize: give exactly one of scale and output_shape")
  in_hw = img.shape[:2]
  if output_shape is None:
    out_hw, scales = output_size(in_hw, scale), (scale, scale)
  else:
    out_hw = tuple(output_shape)
    scales = (out_hw[0] / in_hw[0], out_hw[1] / in_hw[1])
  wh = weight_matrix(in_hw[0], out_hw[0], scales[0])
  ww = weight_matrix(in_hw[1], out_hw[1], scales[1])
  # MATLAB resizes the dimension with the smaller scale first (ties: rows first); the float result only
  # differs by rounding, but keeping the order makes intermediate sizes (and cost) match.
  if scales[1] < scales[0]:
    out = np.tensordot(ww, img, axes=([1], [1])).swapaxes(0, 1)
    return np.tensordot(wh, out, axes=([1], [0]))
  out = np.tensordot(wh, img, axes=([1], [0]))
  return np.tensordot(ww, out, axes=([1], [1])).swapaxes(0, 1)


def to_uint8(img: np.ndarray, peak: float = 1.0) -> np.ndarray:
  """Clips to [0, peak] and rounds to uint8 (what saving a PNG does; MATLAB's im2uint8)."""
  return np.clip(np.round(np.asarray(img, np.float64) * (255.0 / peak)), 0, 255).astype(np.uint8)


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
  """Keeps the top-left rows/cols so both sides are multiples of ``scale``."""
  h, w = img.shape[:2]
  return img[:h - h % scale, :w - w % scale]


def downscale_uint8(hr: np.ndarray, scale: int) -> np.ndarray:
  """The papers' LR: modcrop, MATLAB bicubic by 1/scale on [0, 1], rounded to uint8."""
  return to_uint8(imresize(modcrop(hr, scale).astype(np.float64) / 255.0, 1.0 / scale))


def tf_downscale(hr, scale: int):
  """Downscales a static-shape float [..., H, W, C] TF tensor by ``1/scale`` with MATLAB bicubic.

  Used inside tf.data; the weight matrices are constants, so this is two small matmuls per patch.
  """
  import tensorflow as tf  # Imported lazily: evaluation and inference never need TensorFlow.
  h, w = int(hr.shape[-3]), int(hr.shape[-2])
  if h % scale or w % scale:
    raise ValueError(f"tf_downscale: patch {h}x{w} is not a multiple of scale {scale}")
  wh = tf.constant(weight_matrix(h, h // scale, 1.0 / scale), dtype=hr.dtype)
  ww = tf.constant(weight_matrix(w, w // scale, 1.0 / scale), dtype=hr.dtype)
  out = tf.einsum("oh,...hwc->...owc", wh, hr)
  return tf.einsum("pw,...owc->...opc", ww, out)
