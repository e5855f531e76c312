"""Reading and writing image files as uint8 arrays, whatever their mode; the one place that talks to Pillow.

Pixel limit (decompression-bomb guard): every read compares the size in the file's header with the caller's
``max_pixels`` before decoding anything. Pillow's own process-wide limit (``Image.MAX_IMAGE_PIXELS``, and the
warnings it raises) is switched off once, at import, so that nothing is mutated per call: reads are
thread-safe and the limit in force is the one the caller gave (config.data.max_image_pixels, --max_pixels).

Only regular files are opened (a FIFO, socket or device in an image folder would block a reader for ever: it is
refused with its kind, like any unreadable file). A file of several frames (animated GIF/WebP/PNG, multi-page
TIFF) or sizes (ICO) is decoded as its first frame or largest size, and ``Decoded.note`` (also logged) says so.
Writes are atomic (``atomic.replace``): a full disk or a signal never leaves a truncated image under the final
name, and a symlink at the destination is replaced, never followed.
"""

from __future__ import annotations

import dataclasses
import os
import stat

import numpy as np
from absl import logging
from PIL import Image, ImageOps

from sr_jax.core import atomic
from sr_jax.core.errors import UserError
from sr_jax.image import color

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
WRITE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
DEFAULT_MAX_PIXELS = 178_956_970  # Pillow's own default hard limit (2 x 89,478,485).
Image.MAX_IMAGE_PIXELS = None  # Replaced by the per-call header check below (see the module docstring).

_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
_EXIF_ORIENTATION = 0x0112


class ImageReadError(UserError, ValueError):
  """An image could not be used; the message names the file and the reason."""


@dataclasses.dataclass
class Decoded:
  """A decoded image file: uint8 pixels, alpha, and the metadata an output should keep."""
  pixels: np.ndarray  # HxWx3 RGB, or HxW when gray and keep_gray.
  alpha: np.ndarray | None  # HxW uint8, or None.
  icc_profile: bytes | None  # The colour profile, when it describes the returned pixels (RGB or gray).
  exif: bytes | None  # EXIF with the orientation reset (the pixels are already upright).
  dpi: tuple[float, float] | None
  note: str | None = None  # Set when only part of the file was decoded (first frame, largest icon size).


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


def pixel_limit_message(name: str, width: int, height: int, max_pixels: int) -> str:
  return (f"{name}: {width}x{height} = {width * height:,} pixels is over the limit of {max_pixels:,} pixels "
          "(decompression-bomb guard); raise the limit if the file is trusted")


def _file_kind(mode: int) -> str:
  for test, kind in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                     (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                     (stat.S_ISBLK, "a block device")):
    if test(mode):
      return kind
  return "not a regular file"


def check_regular(name: str) -> None:
  """Raises ImageReadError unless ``name`` is a regular file (symlinks to one are fine); never blocks."""
  try:
    st = os.stat(name)
  except FileNotFoundError as e:
    raise ImageReadError(f"{name}: no such file") from e
  except OSError as e:
    raise ImageReadError(f"{name}: cannot be read ({e.strerror})") from e
  if not stat.S_ISREG(st.st_mode):
    raise ImageReadError(f"{name}: {_file_kind(st.st_mode)}, not an image file")


def header_size(path: str) -> tuple[int, int]:
  """(width, height) from the file header without decoding; (0, 0) if unreadable (decoding reports why)."""
  try:
    check_regular(path)
    with Image.open(path) as im:
      return im.size
  except Exception:  # noqa: BLE001  (any failure is reported by the real decode)
    return (0, 0)


def _partial_note(name: str, im: Image.Image) -> str | None:
  frames = getattr(im, "n_frames", 1)
  if frames > 1:
    return f"{name}: holds {frames} frames (animated or multi-page {im.format}); only the first was used"
  sizes = im.info.get("sizes") if im.format in ("ICO", "ICNS") else None
  if sizes and len(sizes) > 1:
    return (f"{name}: holds {len(sizes)} icon sizes; only the largest ({im.width}x{im.height}) was used")
  return None


def _open(name: str, max_pixels: int | None) -> Image.Image:
  check_regular(name)
  try:
    im = Image.open(name)
  except FileNotFoundError as e:
    raise ImageReadError(f"{name}: no such file") from e
  except Exception as e:  # PIL raises many types for truncated/corrupt/non-image data.
    raise ImageReadError(f"{name}: not a readable image ({type(e).__name__}: {e})") from e
  if max_pixels is not None and im.width * im.height > max_pixels:
    im.close()
    raise ImageReadError(pixel_limit_message(name, im.width, im.height, max_pixels))
  if im.width == 0 or im.height == 0:
    im.close()
    raise ImageReadError(f"{name}: image has no pixels")
  return im


def decode(path: str, *, keep_gray: bool = False, max_pixels: int | None = None) -> Decoded:
  """Decodes any image file (gray, gray+alpha, RGBA, palette, CMYK, 1-bit, 16-bit) upright (EXIF orientation).

  Raises ImageReadError naming the file for anything unreadable or over ``max_pixels``.
  """
  name = os.fspath(path)
  with _open(name, max_pixels) as src:
    try:
      note = _partial_note(name, src)
      icc = src.info.get("icc_profile")
      im = ImageOps.exif_transpose(src)
      im.load()
    except Exception as e:
      raise ImageReadError(f"{name}: not a readable image ({type(e).__name__}: {e})") from e
    exif = im.getexif()
    exif.pop(_EXIF_ORIENTATION, None)
    dpi = src.info.get("dpi")
  mode = im.mode
  if mode == "P":
    im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    mode = im.mode
  alpha = np.asarray(im.getchannel("A")) if mode in ("RGBA", "LA", "PA") else None
  keeps_profile = mode in ("RGB", "RGBA") or (keep_gray and mode in ("L", "LA"))  # Not CMYK/LAB -> RGB.
  if note:
    logging.warning("%s", note)
  meta = dict(icc_profile=icc if keeps_profile else None, exif=exif.tobytes() if len(exif) else None,
              dpi=tuple(float(d) for d in dpi) if dpi else None, note=note)
  if mode in _GRAY_MODES:
    gray = _to_uint8(np.asarray(im.convert("L") if mode in ("1", "LA") else im))
    return Decoded(gray if keep_gray else color.gray_to_rgb(gray), alpha, **meta)
  if im.mode != "RGB":
    im = im.convert("RGB")  # RGBA (alpha returned apart), CMYK, YCbCr, LAB, HSV.
  return Decoded(np.ascontiguousarray(np.asarray(im, dtype=np.uint8)), alpha, **meta)


def read_image(path: str, *, keep_gray: bool = False, max_pixels: int | None = None) -> np.ndarray:
  """An HxWx3 uint8 RGB array (HxW when ``keep_gray`` and the file is gray); alpha dropped. See ``decode``."""
  return decode(path, keep_gray=keep_gray, max_pixels=max_pixels).pixels


def list_images(folder: str) -> list[str]:
  """Files of ``folder`` and its sub-folders, sorted; hidden files and folders excluded (sr_jax's temporary
  files are hidden). Raises if none. Entries that are not regular files are listed too: reading them raises
  ImageReadError with their kind, so every caller reports them among its skipped files."""
  if not os.path.isdir(folder):
    raise FileNotFoundError(f"image folder {folder!r} does not exist")
  files = []
  for root, dirs, names in os.walk(folder):
    dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    files += [os.path.join(root, f) for f in names if not f.startswith(".")]
  if not files:
    raise FileNotFoundError(f"image folder {folder!r} is empty")
  return sorted(files, key=lambda f: os.path.relpath(f, folder))


def save_image(path: str, img: np.ndarray, *, quality: int = 95, icc_profile: bytes | None = None,
               exif: bytes | None = None, dpi: tuple[float, float] | None = None) -> None:
  """Writes a uint8 HxW or HxWxC array in the format of the extension, keeping the given metadata.

  JPEG and WebP are written at ``quality`` (JPEG with 4:4:4 chroma, no colour sub-sampling). Atomic: see the
  module docstring.
  """
  arr = np.asarray(img)
  if arr.ndim == 3 and arr.shape[-1] == 1:
    arr = arr[..., 0]
  ext = os.path.splitext(path)[1].lower()
  options = {k: v for k, v in (("icc_profile", icc_profile), ("exif", exif), ("dpi", dpi)) if v}
  if ext in (".jpg", ".jpeg"):
    options.update(quality=quality, subsampling=0)
  elif ext == ".webp":
    options.update(quality=quality)
  elif ext == ".bmp":
    options.pop("icc_profile", None), options.pop("exif", None)
  fmt = Image.registered_extensions().get(ext)
  if fmt is None:
    raise ValueError(f"{path}: no image format for the extension {ext!r}")
  with atomic.replace(path) as f:
    Image.fromarray(arr).save(f, format=fmt, **options)
