"""Upscaling image files: where each output goes, and writing it with the input's metadata.

``plan`` maps input files to output paths before any model runs: ``<name>_x<scale>.<ext>`` in the output
folder, mirroring sub-folders of an input folder; inputs whose outputs would collide (``photo.png`` and
``photo.jpg`` with ``--ext=png``) get their own extension in the name (``photo_png_x2.png``, ``photo_jpg_x2.png``),
and an output that would overwrite an input is refused. ``upscale_files`` runs a plan, batching same-size small
images through the model; ``write`` keeps the ICC profile, EXIF (orientation reset: the pixels are written
upright) and DPI, writes JPEG/WebP at the given quality, and applies ``outscale`` (the model's SR, then a
bicubic resize to the input's size times it, as Real-ESRGAN's --outscale).
"""

from __future__ import annotations

import collections
import dataclasses
import os

import numpy as np
from absl import logging
from PIL import Image
from tqdm import tqdm

from sr_jax import image_io, imresize, inference

_NO_ALPHA = (".jpg", ".jpeg", ".bmp")


@dataclasses.dataclass(frozen=True)
class Job:
  src: str
  dst: str | None  # None: refused (see ``problem``).
  problem: str = ""


def check_ext(ext: str | None) -> str | None:
  """'.png'-style extension of ``--ext`` (None: keep each input's); raises ValueError for unwritable formats."""
  if not ext:
    return None
  ext = "." + ext.lower().lstrip(".")
  if ext not in image_io.WRITE_EXTENSIONS:
    raise ValueError(f"--ext={ext[1:]}: not a format sr_jax writes; accepted: "
                     + ", ".join(e[1:] for e in image_io.WRITE_EXTENSIONS))
  return ext


def collect_inputs(path: str) -> tuple[str, list[str]]:
  """(root, files): a folder's images (sub-folders included) or one file."""
  if os.path.isdir(path):
    return path, image_io.list_images(path)
  if not os.path.exists(path):
    raise FileNotFoundError(f"--input {path!r} does not exist")
  return os.path.dirname(path), [path]


def plan(files: list[str], root: str, out_dir: str, scale: float, ext: str | None) -> list[Job]:
  """One Job per input, output names decided up front (collisions disambiguated, inputs never overwritten)."""
  def name(src: str, tag: str = "") -> str:
    rel = os.path.relpath(src, root) if root else os.path.basename(src)
    stem, src_ext = os.path.splitext(rel)
    out_ext = ext or src_ext.lower() or ".png"
    return os.path.join(out_dir, f"{stem}{tag}_x{scale:g}{out_ext}")

  by_dst = collections.defaultdict(list)
  for src in files:
    by_dst[os.path.normpath(name(src))].append(src)
  dst_of = {}
  for dst, srcs in by_dst.items():
    for src in srcs:  # Colliding names carry their own extension.
      dst_of[src] = dst if len(srcs) == 1 else name(src, "_" + os.path.splitext(src)[1].lstrip(".").lower())
  inputs = {os.path.realpath(f) for f in files}
  jobs = []
  for src in files:
    dst = dst_of[src]
    if os.path.realpath(dst) in inputs:
      jobs.append(Job(src, None, f"{src}: output {dst} would overwrite an input; choose another --output"))
    else:
      jobs.append(Job(src, dst))
  return jobs


def rescale(sr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  """A uint8 image resized to ``size`` (rows, cols) by MATLAB bicubic (antialiased when shrinking)."""
  if sr.shape[:2] == size:
    return sr
  return imresize.to_uint8(imresize.imresize(sr / 255.0, output_shape=size))


def write(image: image_io.Decoded, sr_float: np.ndarray, dst: str, scale: int, *, quality: int = 95,
          outscale: float | None = None) -> None:
  """Writes the model's float output for ``image`` to ``dst``: its layout, alpha and metadata, ``outscale``."""
  sr = inference.finish(sr_float, image.pixels, image.alpha, scale)
  if outscale:
    h, w = image.pixels.shape[:2]
    sr = rescale(sr, (max(1, round(h * outscale)), max(1, round(w * outscale))))
  if image.alpha is not None and os.path.splitext(dst)[1].lower() in _NO_ALPHA:
    sr = sr[..., :-1]
  os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
  image_io.save_image(dst, sr, quality=quality, icc_profile=image.icc_profile, exif=image.exif, dpi=image.dpi)


def _header_size(path: str) -> tuple[int, int]:
  """(width, height) from the file header, for grouping only (0, 0 if unreadable: decoding reports it)."""
  try:
    with Image.open(path) as im:
      return im.size
  except Exception:  # noqa: BLE001  (any failure is reported by the real decode)
    return (0, 0)


def upscale_files(upscaler: inference.Upscaler, jobs: list[Job], *, max_pixels: int | None, quality: int = 95,
                  outscale: float | None = None, progress: bool = False) -> tuple[int, list[str]]:
  """Upscales every job; returns (number written, problems naming each skipped file).

  Files are taken in order of size, so that same-size images small enough for one tile window run through the
  model together, ``upscaler.batch_size`` at a time (a folder of frames); larger ones are tiled one by one.
  """
  done, failed, pending = 0, [], []  # pending: (job, decoded image) of one shape, to run as a batch.

  def fail(job: Job, e: Exception) -> None:
    failed.append(str(e) if job.src in str(e) else f"{job.src}: {e}")
    logging.error("Skipping %s", failed[-1])

  def flush() -> None:
    nonlocal done
    outs = upscaler.batch([image.pixels for _, image in pending]) if pending else []
    for (job, image), sr in zip(pending, outs):
      try:
        write(image, sr, job.dst, upscaler.scale, quality=quality, outscale=outscale)
        done += 1
      except (OSError, ValueError) as e:
        fail(job, e)
    pending.clear()

  todo = sorted((j for j in jobs if j.dst), key=lambda j: _header_size(j.src))
  for job in tqdm(todo, desc="images", unit="img", disable=not progress or len(todo) < 2):
    try:
      image = image_io.decode(job.src, keep_gray=True, max_pixels=max_pixels)
      if upscaler.batch_size > 1 and upscaler.fits_one_window(image.pixels.shape):
        if pending and pending[0][1].pixels.shape != image.pixels.shape:
          flush()
        pending.append((job, image))
        if len(pending) == upscaler.batch_size:
          flush()
        continue
      write(image, upscaler(image.pixels), job.dst, upscaler.scale, quality=quality, outscale=outscale)
      done += 1
    except (image_io.ImageReadError, OSError, ValueError) as e:
      fail(job, e)
  flush()
  return done, failed
