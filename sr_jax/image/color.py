"""Gray <-> RGB and luma: the one home of colour conversions (IO, model inputs, metrics, figures).

* ``rgb_to_y``: Y of MATLAB ``rgb2ycbcr`` (16-235), what PSNR/SSIM are measured on.
* ``rgb_to_luma``: BT.601 luma in the image's own 0-255 range (a gray image's value for the same colour).
* ``rgb_to_gray_matlab``: MATLAB ``rgb2gray`` (the IQA references' gray, sr-score --channels=gray).
* ``rgb_to_gray_uint8`` / ``gray_to_rgb`` / ``to_channels``: uint8 layouts for models of 1 or 3 channels.
"""

from __future__ import annotations

import numpy as np

# MATLAB rgb2ycbcr, Y row, for RGB in [0, 255].
_Y_WEIGHTS = np.array([65.481, 128.553, 24.966]) / 255.0
_RGB2GRAY_WEIGHTS = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])  # MATLAB rgb2gray.


def rgb_to_y(img: np.ndarray) -> np.ndarray:
  """Y of MATLAB rgb2ycbcr for RGB in [0, 255] (float, 16-235)."""
  return 16.0 + np.asarray(img, np.float64)[..., :3] @ _Y_WEIGHTS


def rgb_to_luma(img: np.ndarray) -> np.ndarray:
  """BT.601 luma in the image's own range (0-255, float): Y rescaled to full range."""
  return np.asarray(img, np.float64)[..., :3] @ (_Y_WEIGHTS * 255.0 / 219.0)


def rgb_to_gray_uint8(rgb: np.ndarray) -> np.ndarray:
  """uint8 RGB [..., 3] -> uint8 luma [..., 1] (the input of gray models)."""
  return np.clip(np.round(rgb_to_luma(rgb)), 0, 255)[..., None].astype(np.uint8)


def rgb_to_gray_matlab(img: np.ndarray) -> np.ndarray:
  """MATLAB ``rgb2gray`` of a uint8 image: its coefficients, rounded to uint8 (HxW); gray is returned as HxW."""
  if is_gray(img):
    return img.reshape(img.shape[:2])
  gray = np.asarray(img, np.float64)[..., :3] @ _RGB2GRAY_WEIGHTS
  return np.clip(np.round(gray), 0, 255).astype(np.uint8)


def is_gray(img: np.ndarray) -> bool:
  return img.ndim == 2 or img.shape[-1] == 1


def gray_to_rgb(img: np.ndarray) -> np.ndarray:
  """HxW or HxWx1 -> HxWx3 (R = G = B); HxWx3 is returned as it is."""
  if img.ndim == 3 and img.shape[-1] == 3:
    return img
  return np.repeat(img.reshape(img.shape[:2])[..., None], 3, axis=-1)


def to_channels(img: np.ndarray, channels: int) -> np.ndarray:
  """A uint8 image (HxW, HxWx1 or HxWx3) as HxWx``channels`` (1: luma, 3: RGB)."""
  if channels == 3:
    return gray_to_rgb(img)
  return img.reshape(img.shape[:2])[..., None] if is_gray(img) else rgb_to_gray_uint8(img)
