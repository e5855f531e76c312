"""Image sources: folders, benchmark sets, scikit-image's bundled photos and tensorflow-datasets' DIV2K.

A source string is ``kind:arg`` and several are joined with ``+`` (see configs/default.py). ``load_source``
decodes every image once, skipping unusable files with one warning each, and returns an ``ImageSet``: the
named uint8 images that training and validation read.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import os
from typing import Callable

import ml_collections
import numpy as np
import skimage.data
from absl import logging

from sr_jax.core import errors
from sr_jax.core.errors import DataError, require
from sr_jax.data import div2k, paired
from sr_jax.data import degradations
from sr_jax.image import image_io

SOURCE_KINDS = ("folder", "bench", "skimage", "tfds", "paired")

DATA_ENV = "SR_DATA_DIR"


@dataclasses.dataclass
class ImageSet:
  """Decoded images of one source. ``images[i]`` is HxWx3 uint8 (HxW for gray when keep_gray)."""
  name: str
  names: list[str]
  images: list[np.ndarray] | None  # None when not cached; ``get`` decodes on demand.
  shapes: np.ndarray  # (N, 2) int64 heights and widths.
  skipped: list[str]  # 'file: reason' for each file that was left out.
  loader: Callable[[int], np.ndarray] | None = None
  lr_images: list[np.ndarray] | None = None  # The dataset's own LR images (data.lr_from_dataset), aligned.

  def __len__(self) -> int:
    return len(self.names)

  def get(self, i: int) -> np.ndarray:
    return self.images[i] if self.images is not None else self.loader(i)


def split_sources(spec: str) -> list[str]:
  parts = [p.strip() for p in spec.split("+") if p.strip()]
  if not parts:
    raise DataError(f"empty source specification {spec!r}")
  return parts


def parse_source(spec: str) -> tuple[str, str]:
  """'kind:arg' -> (kind, arg); a bare path is a folder. Raises ValueError listing the accepted kinds."""
  kind, sep, arg = spec.partition(":")
  if not sep or (len(kind) == 1 and os.name == "nt"):
    return "folder", spec
  if kind not in SOURCE_KINDS:
    raise DataError(f"unknown source kind {kind!r} in {spec!r}; accepted: "
                     + ", ".join(f"'{k}:...'" for k in SOURCE_KINDS) + " or a folder path")
  if not arg:
    raise DataError(f"source {spec!r} names no {kind}")
  return kind, arg


def source_name(spec: str) -> str:
  """What a source is called in logs, validation.json and reports: a folder's or set's name, the photos of a
  'skimage:' source ('skimage:chelsea,coffee' -> 'chelsea_coffee'), a tfds name, a paired source's HR folder."""
  kind, arg = parse_source(spec)
  if kind == "folder":
    return os.path.basename(os.path.normpath(arg)) or arg
  if kind == "skimage":
    return "_".join(n.strip() for n in arg.split(",") if n.strip())
  if kind == "tfds":
    return arg.replace("/", "_").replace(":", "_")
  if kind == "paired":
    return os.path.basename(os.path.normpath(paired.parse(arg)[0]))
  return arg


def resolve_data_dir(data_dir: str) -> str:
  root = data_dir or os.environ.get(DATA_ENV, "")
  if not root:
    raise DataError(f"'bench:' sources need config.data.data_dir or the {DATA_ENV} environment variable "
                     "(the folder holding Set5/, Set14/, B100/, T91/, BSD200/ ...)")
  return root


def skimage_files(names: str) -> list[str]:
  """Files of scikit-image's bundled data for comma-separated names (e.g. 'astronaut,chelsea')."""
  root = os.path.dirname(skimage.data.__file__)
  available = {os.path.splitext(f)[0]: f for f in os.listdir(root)
               if f.lower().endswith(image_io.IMAGE_EXTENSIONS)}
  aliases = {"immunohistochemistry": "ihc", "cat": "chelsea"}
  files = []
  for name in (n.strip() for n in names.split(",")):
    key = aliases.get(name, name)
    if key not in available:
      raise DataError(f"skimage has no bundled image {name!r}; available: {', '.join(sorted(available))}")
    files.append(os.path.join(root, available[key]))
  return files


def _files_for(kind: str, arg: str, data_dir: str) -> tuple[str, list[str]]:
  """(root folder, image files below it) of a folder-like source."""
  if kind == "folder":
    return arg, image_io.list_images(arg)
  if kind == "bench":
    root = resolve_data_dir(data_dir)
    folder = os.path.join(root, arg)
    if not os.path.isdir(folder):
      have = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))) \
          if os.path.isdir(root) else []
      raise FileNotFoundError(f"benchmark set {arg!r} not found at {folder}"
                              + (f"; {root} holds: {', '.join(have)}" if have else f" ({root} does not exist)"))
    return folder, image_io.list_images(folder)
  if kind == "skimage":
    files = skimage_files(arg)
    return os.path.dirname(files[0]), files
  raise AssertionError(kind)


def _decode_files(root: str, files: list[str], keep_gray: bool, max_pixels: int | None, min_size: int
                  ) -> tuple[list[str], list[np.ndarray], list[str]]:
  """(names relative to ``root``, images, 'file: reason' of each file left out), decoded in threads."""
  def read(path):
    try:
      img = image_io.read_image(path, keep_gray=keep_gray, max_pixels=max_pixels)
    except image_io.ImageReadError as e:
      return None, str(e)
    if min(img.shape[:2]) < min_size:
      return None, f"{path}: {img.shape[1]}x{img.shape[0]} is smaller than the {min_size}px minimum"
    return img, None

  names, images, skipped = [], [], []
  with concurrent.futures.ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
    for path, (img, err) in zip(files, pool.map(read, files)):
      if err is not None:
        logging.warning("Skipping %s", err)
        skipped.append(err)
      else:
        names.append(os.path.relpath(path, root))
        images.append(img)
  return names, images, skipped


def _paired_images(part: str, arg: str, scale: int, keep_gray: bool, max_pixels: int | None, min_size: int):
  """(names, HR images, LR images, skipped) of a 'paired:HR_DIR,LR_DIR' source."""
  if not scale:
    raise DataError(f"{part!r}: paired folders train on their own LR images; set config.data.lr_from_dataset=True")
  names, images, lrs, skipped = [], [], [], []
  for name, hr, lr in paired.iter_pairs(*paired.parse(arg), scale, keep_gray=keep_gray, max_pixels=max_pixels):
    if min(hr.shape[:2]) < min_size:
      skipped.append(f"{part}/{name}: smaller than the {min_size}px minimum")
      continue
    names.append(name)
    images.append(hr)
    lrs.append(lr)
  return names, images, lrs, skipped


def _tfds_images(arg: str, tfds_data_dir: str, tfds_manual_dir: str, keep_gray: bool, lr_scale: int):
  return div2k.load_hr_images(arg, data_dir=tfds_data_dir or None, manual_dir=tfds_manual_dir or None,
                              keep_gray=keep_gray, scale=lr_scale)


def load_source(spec: str, *, data_dir: str = "", tfds_data_dir: str = "", tfds_manual_dir: str = "",
                keep_gray: bool = False,
                max_pixels: int | None = None, min_size: int = 1, cache_gb: float = float("inf"),
                lr_scale: int = 0) -> ImageSet:
  """Decodes all images of a '+'-joined source spec. Raises if none is usable.

  ``lr_scale`` > 0 also keeps the dataset's own LR images (tfds and paired sources only;
  data.lr_from_dataset); paired sources need it (their HR/LR size ratio is checked against it).
  """
  names, images, skipped, lrs = [], [], [], []
  files_all: list[str] = []
  for part in split_sources(spec):
    kind, arg = parse_source(part)
    if kind == "tfds":
      n, ims, lr = _tfds_images(arg, tfds_data_dir, tfds_manual_dir, keep_gray, lr_scale)
      small = [i for i, im in enumerate(ims) if min(im.shape[:2]) < min_size]
      for i in small:
        skipped.append(f"{part}/{n[i]}: smaller than the {min_size}px minimum")
      names += [x for i, x in enumerate(n) if i not in small]
      images += [x for i, x in enumerate(ims) if i not in small]
      lrs += [x for i, x in enumerate(lr or []) if i not in small]
      files_all += [""] * (len(n) - len(small))
      continue
    if kind == "paired":
      n, ims, lr, sk = _paired_images(part, arg, lr_scale, keep_gray, max_pixels, min_size)
      names, images, lrs, skipped = names + n, images + ims, lrs + lr, skipped + sk
      files_all += [""] * len(n)
      continue
    if lr_scale:
      raise DataError(f"data.lr_from_dataset needs sources that ship LR images (tfds, paired:); {part!r} has "
                      "none")
    root, files = _files_for(kind, arg, data_dir)
    n, ims, sk = _decode_files(root, files, keep_gray, max_pixels, min_size)
    by_name = {os.path.relpath(f, root): f for f in files}
    names += n
    images += ims
    skipped += sk
    files_all += [by_name[x] for x in n]
  if not images:
    raise DataError(f"no usable images in {spec!r}"
                     + (f" ({len(skipped)} skipped: {'; '.join(skipped[:5])})" if skipped else ""))
  if skipped:
    logging.warning("%s: %d of %d files skipped", spec, len(skipped), len(skipped) + len(images))
  shapes = np.array([im.shape[:2] for im in images], dtype=np.int64)
  total_gb = sum(im.nbytes for im in images) / 2**30
  image_set = ImageSet(name="+".join(source_name(p) for p in split_sources(spec)), names=names,
                       images=images, shapes=shapes, skipped=skipped, lr_images=lrs if lr_scale else None)
  if total_gb > cache_gb and all(files_all) and not lr_scale:
    logging.info("%s: %.1f GB decoded is over data.cache_gb=%.1f; decoding images on use", spec, total_gb,
                 cache_gb)
    image_set.images = None
    image_set.loader = _lru_loader(files_all, keep_gray, max_pixels)
  return image_set


def _lru_loader(files: list[str], keep_gray: bool, max_pixels: int | None, size: int = 8):
  cache: collections.OrderedDict[int, np.ndarray] = collections.OrderedDict()

  def load(i: int) -> np.ndarray:
    if i in cache:
      cache.move_to_end(i)
      return cache[i]
    img = image_io.read_image(files[i], keep_gray=keep_gray, max_pixels=max_pixels)
    cache[i] = img
    if len(cache) > size:
      cache.popitem(last=False)
    return img

  return load


def default_config() -> ml_collections.ConfigDict:
  """config.data: where training and validation images come from and how training patches are made."""
  c = ml_collections.ConfigDict()
  # Training images. A source is 'kind:arg'; join several with '+'. Kinds: 'folder:PATH' (or a bare path),
  # 'bench:NAME' (a folder under data_dir, e.g. bench:T91+bench:BSD200), 'skimage:NAME,NAME' (photos bundled
  # with scikit-image), 'tfds:div2k/bicubic_x2' (HR of tfds's train split; ':SPLIT' may follow).
  c.train = "tfds:div2k/bicubic_x2"
  # Held-out validation sets, same syntax; each '+'-part is scored and logged separately.
  c.val = "bench:Set5"
  c.data_dir = ""  # Root for 'bench:' sources; empty means $SR_DATA_DIR.
  c.tfds_data_dir = ""  # tensorflow-datasets data_dir; empty means tfds's default (~/tensorflow_datasets).
  # Offline DIV2K: folder with the official zips (default <tfds data_dir>/downloads/manual).
  c.tfds_manual_dir = ""
  # Train on the LR images a tfds source ships (e.g. div2k/unknown_x2) instead of making LR with our MATLAB
  # bicubic; needs tfds sources of the matching scale.
  c.lr_from_dataset = False
  # How training LR patches are made from HR: 'bicubic' (MATLAB bicubic, the papers' benchmark setting) or
  # 'realesrgan' (Real-ESRGAN's second-order blur/resize/noise/JPEG model, set up in config.realesrgan; for real
  # photos). Validation sets get the same degradation, fixed per image (seeded by config.seed and the image).
  c.degradation = "bicubic"
  # Processes that degrade training patches with data.degradation='realesrgan': -1 one per CPU core, 0 none (in
  # tf.data's threads, where the GIL serialises most of it), N. The patches are the same for every value.
  c.degradation_workers = -1
  c.patch_size = 48  # LR patch side; HR patches are patch_size * scale.
  c.augment = True  # Apply one of the 8 dihedral transforms (flips/rotations) per patch.
  c.cache_gb = 16.0  # Keep decoded training images in memory up to this size; above it, decode per use.
  c.max_val_images = 0  # Score at most this many images per validation set (0: all).
  c.max_image_pixels = 178_956_970  # Larger images are refused (decompression-bomb guard).
  return c


MIN_PATCH = 8  # LR pixels: the smallest training patch (the model's 3x3 convolutions see padding at 1-2 px).


def validate(config: ml_collections.ConfigDict) -> None:
  """config.data: patch size, cache, degradation, the sources' syntax."""
  d = config.data
  require(d.degradation_workers >= -1, "data.degradation_workers", d.degradation_workers,
          "-1 (one per CPU core), 0 (none) or a number of processes")
  require(d.patch_size >= MIN_PATCH, "data.patch_size", d.patch_size,
          f"an integer >= {MIN_PATCH} (LR pixels; a smaller patch is mostly the zero padding of the convolutions "
          "around it, not image)")
  require(d.cache_gb >= 0, "data.cache_gb", d.cache_gb, "a size in GB >= 0")
  require(d.degradation in degradations.DEGRADATIONS, "data.degradation", d.degradation,
          ", ".join(map(repr, degradations.DEGRADATIONS)))
  require(not (d.degradation != "bicubic" and d.lr_from_dataset), "data.lr_from_dataset", d.lr_from_dataset,
          "False with data.degradation='realesrgan' (LR patches are made by the degradation model)")
  for key in ("train", "val"):
    try:
      for part in split_sources(d[key]):
        parse_source(part)
    except ValueError as e:
      raise errors.ConfigError(f"config.data.{key}: {e}") from None
  if any(parse_source(p)[0] == "paired" for p in split_sources(d.train)):
    require(d.lr_from_dataset, "data.lr_from_dataset", d.lr_from_dataset,
            "True when data.train has paired: folders (training then uses their LR images)")
