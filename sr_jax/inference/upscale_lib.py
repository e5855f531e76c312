"""Upscaling image files: where each output goes, and writing it with the input's metadata.

``plan`` maps input files to output paths before any model runs: ``<name>_x<scale>.<ext>`` in the output
folder, mirroring sub-folders of an input folder; inputs whose outputs would collide (``photo.png`` and
``photo.jpg`` with ``--ext=png``) get their own extension in the name (``photo_png_x2.png``, ``photo_jpg_x2.png``;
``-2``, ``-3``, ... after it if that name is taken too, e.g. by the output of ``photo_png.png``). Names are
compared case-insensitively (as macOS and Windows disks do), so every planned output is written and none
replaces another; an output that would overwrite an input is refused. Outputs are written atomically
(``image_io.save_image``): a full disk or Ctrl-C leaves an earlier output of the same name as it was.
``upscale_files`` runs a plan, batching same-size small images through the model; ``write`` keeps the ICC
profile, EXIF (orientation reset: the pixels are written upright) and DPI, writes JPEG/WebP at the given quality,
and applies ``outscale`` (the model's SR, then a bicubic resize to the input's size times it, as Real-ESRGAN's
--outscale).
"""

from __future__ import annotations

import collections
import dataclasses
import os

import numpy as np
from absl import logging
from tqdm import tqdm

from sr_jax.image import image_io, imresize
from sr_jax.inference import upscaler

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


def check_output_dir(path: str) -> None:
  """Creates the output folder, or raises naming it when it is a file or cannot be written (before any model
  is loaded)."""
  if os.path.exists(path) and not os.path.isdir(path):
    raise NotADirectoryError(f"--output {path} is a file, not a folder")
  os.makedirs(path, exist_ok=True)
  if not os.access(path, os.W_OK | os.X_OK):
    raise PermissionError(f"--output {path} is not writable")


def _key(path: str) -> str:
  return os.path.normcase(os.path.normpath(path)).lower()


def plan(files: list[str], root: str, out_dir: str, scale: float, ext: str | None,
         suffix: str | None = None) -> list[Job]:
  """One Job per input, output names decided up front (unique, inputs never overwritten; module docstring);
  ``suffix``: names ``<stem>_<suffix>`` (default ``x<scale>``; '' for the input's stem alone)."""
  end = f"_x{scale:g}" if suffix is None else (f"_{suffix}" if suffix else "")

  def name(src: str, tag: str = "") -> str:
    rel = os.path.relpath(src, root) if root else os.path.basename(src)
    stem, src_ext = os.path.splitext(rel)
    out_ext = ext or src_ext.lower() or ".png"
    return os.path.join(out_dir, f"{stem}{tag}{end}{out_ext}")

  by_dst = collections.defaultdict(list)
  for src in files:
    by_dst[_key(name(src))].append(src)
  taken = {k for k, srcs in by_dst.items() if len(srcs) == 1}  # Names only one input wants are its own.
  dst_of = {}
  for src in files:
    if len(by_dst[_key(name(src))]) == 1:
      dst_of[src] = name(src)
      continue
    tag = "_" + (os.path.splitext(src)[1].lstrip(".").lower() or "noext")  # Colliding names carry their extension.
    dst, n = name(src, tag), 2
    while _key(dst) in taken:
      dst, n = name(src, f"{tag}-{n}"), n + 1
    taken.add(_key(dst))
    dst_of[src] = dst
  inputs = {_key(os.path.realpath(f)) for f in files}
  jobs = []
  for src in files:
    dst = dst_of[src]
    if _key(os.path.realpath(dst)) in inputs:
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
  sr = upscaler.finish(sr_float, image.pixels, image.alpha, scale)
  if outscale:
    h, w = image.pixels.shape[:2]
    sr = rescale(sr, (max(1, round(h * outscale)), max(1, round(w * outscale))))
  if image.alpha is not None and os.path.splitext(dst)[1].lower() in _NO_ALPHA:
    sr = sr[..., :-1]
  os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
  image_io.save_image(dst, sr, quality=quality, icc_profile=image.icc_profile, exif=image.exif, dpi=image.dpi)


def upscale_files(up: upscaler.Upscaler, jobs: list[Job], *, max_pixels: int | None, quality: int = 95,
                  outscale: float | None = None, progress: bool = False) -> tuple[int, list[str]]:
  """Upscales every job; returns (number written, problems naming each skipped file).

  Files are taken in order of size, so that same-size images small enough for one tile window run through the
  model together, ``up.batch_size`` at a time (a folder of frames); larger ones are tiled one by one.
  """
  done, failed, pending = 0, [], []  # pending: (job, decoded image) of one shape, to run as a batch.

  def fail(job: Job, e: Exception) -> None:
    failed.append(str(e) if job.src in str(e) else f"{job.src}: {e}")
    logging.error("Skipping %s", failed[-1])

  def save(job: Job, image: image_io.Decoded, sr: np.ndarray) -> None:
    nonlocal done
    try:
      write(image, sr, job.dst, up.scale, quality=quality, outscale=outscale)
    except OSError as e:
      kept = " (the file already there is kept as it was)" if os.path.lexists(job.dst) else ""
      fail(job, OSError(f"could not write {job.dst}: {e.strerror or e}{kept}"))
    else:
      done += 1

  def flush() -> None:
    outs = up.batch([image.pixels for _, image in pending]) if pending else []
    for (job, image), sr in zip(pending, outs):
      save(job, image, sr)
    pending.clear()

  todo = sorted((j for j in jobs if j.dst), key=lambda j: image_io.header_size(j.src))
  for job in tqdm(todo, desc="images", unit="img", disable=not progress or len(todo) < 2):
    try:
      image = image_io.decode(job.src, keep_gray=True, max_pixels=max_pixels)
      if up.batch_size > 1 and up.fits_one_window(image.pixels.shape):
        if pending and pending[0][1].pixels.shape != image.pixels.shape:
          flush()
        pending.append((job, image))
        if len(pending) == up.batch_size:
          flush()
        continue
      save(job, image, up(image.pixels))
    except (image_io.ImageReadError, OSError, ValueError) as e:
      fail(job, e)
  flush()
  return done, failed
