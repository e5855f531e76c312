"""Reading images into uint8 arrays, whatever their mode; the one place that talks to Pillow."""

from __future__ import annotations

import os
import warnings

import numpy as np
from PIL import Image, ImageOps

from sr_jax import color

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


class ImageReadError(ValueError):
  """An image could not be used; the message names the file and the reason."""


def _to_uint8(arr: np.ndarray) -> np.ndarray:
  if arr.dtype == np.uint8:
    return arr
  if arr.dtype == bool:
    return arr.astype(np.uint8) * 255
  if np.issubdtype(arr.dtype, np.integer):  # 16-bit (or 32-bit holding 16-bit) samples.
    peak = 65535.0 if arr.max(initial=0) > 255 or arr.dtype in (np.uint16, np.int32) else 255.0
    return np.clip(np.round(arr.astype(np.float64) * (255.0 / peak)), 0, 255).astype(np.uint8)
  arr = arr.astype(np.float64)  # Float images: assume [0, 1].
  return np.clip(np.round(arr * 255.0), 0, 255).astype(np.uint8)


def read_image(path: str, *, keep_gray: bool = False, max_pixels: int | None = None) -> np.ndarray:
  """Returns an HxWx3 uint8 RGB array (HxW when ``keep_gray`` and the file is gray).

  Handles gray, gray+alpha, RGBA (alpha dropped), palette, CMYK, 1-bit and 16-bit files and applies the EXIF
  orientation. Raises ImageReadError naming the file for anything unreadable or over ``max_pixels``.
  """
  return read_image_and_alpha(path, keep_gray=keep_gray, max_pixels=max_pixels)[0]


def read_image_and_alpha(path: str, *, keep_gray: bool = False, max_pixels: int | None = None
                         ) -> tuple[np.ndarray, np.ndarray | None]:
  """Like ``read_image``, and also returns the HxW uint8 alpha channel (None when the file has none)."""
  name = os.fspath(path)
  try:
    with warnings.catch_warnings():
      warnings.simplefilter("error", Image.DecompressionBombWarning)
      old_limit = Image.MAX_IMAGE_PIXELS
      Image.MAX_IMAGE_PIXELS = max_pixels
      try:
        with Image.open(name) as im:
          if max_pixels is not None and im.width * im.height > max_pixels:
            raise ImageReadError(
                f"{name}: {im.width}x{im.height} = {im.width * im.height:,} pixels is over the limit of "
                f"{max_pixels:,} (decompression-bomb guard); raise the limit if the file is trusted")
          im = ImageOps.exif_transpose(im)
          im.load()
      finally:
        Image.MAX_IMAGE_PIXELS = old_limit
  except ImageReadError:
    raise
  except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
    raise ImageReadError(f"{name}: over the limit of {max_pixels:,} pixels (decompression-bomb guard); raise "
                         f"the limit if the file is trusted ({e})") from e
  except FileNotFoundError as e:
    raise ImageReadError(f"{name}: no such file") from e
  except Exception as e:  # PIL raises many types for truncated/corrupt/non-image data.
    raise ImageReadError(f"{name}: not a readable image ({type(e).__name__}: {e})") from e
  if im.width == 0 or im.height == 0:
    raise ImageReadError(f"{name}: image has no pixels")

  mode = im.mode
  if mode == "P":
    im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    mode = im.mode
  alpha = np.asarray(im.getchannel("A")) if mode in ("RGBA", "LA", "PA") else None
  if mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
    gray = np.asarray(im.convert("L") if mode in ("1", "LA") else im)
    gray = _to_uint8(gray)
    return (gray if keep_gray else color.gray_to_rgb(gray)), alpha
  if im.mode != "RGB":
    im = im.convert("RGB")  # RGBA (alpha returned apart), CMYK, YCbCr, LAB, HSV.
  return np.ascontiguousarray(np.asarray(im, dtype=np.uint8)), alpha


def list_images(folder: str) -> list[str]:
  """Sorted files of ``folder`` (not recursive), hidden files excluded. Raises if missing or empty."""
  if not os.path.isdir(folder):
    raise FileNotFoundError(f"image folder {folder!r} does not exist")
  files = sorted(os.path.join(folder, f) for f in os.listdir(folder)
                 if not f.startswith(".") and os.path.isfile(os.path.join(folder, f)))
  if not files:
    raise FileNotFoundError(f"image folder {folder!r} is empty")
  return files


def save_image(path: str, img: np.ndarray) -> None:
  """Writes a uint8 HxW or HxWxC array; the format follows the extension."""
  arr = np.asarray(img)
  if arr.ndim == 3 and arr.shape[-1] == 1:
    arr = arr[..., 0]
  Image.fromarray(arr).save(path)
