"""DIV2K through tensorflow-datasets: a data source only (the ``tfds:`` kind and ``evaluate --datasets=div2k``).

tfds's ``div2k/<config>`` builders (bicubic_x2/x3/x4, unknown_x2/x3/x4, ...) download the official zips on
first use and prepare them under ``data_dir`` (default ~/tensorflow_datasets). Offline, put the official zips
in the manual directory (default ``<data_dir>/downloads/manual``, or config.data.tfds_manual_dir); they are
used instead of downloading (tfds still checks their checksums). See ``MANUAL_INSTRUCTIONS``.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Iterator

import numpy as np

from sr_jax.core.errors import DataError, UserError
from sr_jax.image import color


class DatasetUnavailableError(UserError, RuntimeError):
  """The dataset could not be downloaded or prepared; the message says how to provide it offline."""

MANUAL_INSTRUCTIONS = """\
DIV2K could not be downloaded or prepared. On a connected machine the first use downloads it. Offline, copy
the official zips (https://data.vision.ee.ethz.ch/cvl/DIV2K/) into the tfds manual directory
({manual_dir}) and run again:
  DIV2K_train_HR.zip and DIV2K_valid_HR.zip (always), and for div2k/bicubic_xS:
  DIV2K_train_LR_bicubic_XS.zip and DIV2K_valid_LR_bicubic_XS.zip (S = 2, 3 or 4; unknown_xS: ..._LR_unknown_XS.zip)."""


HOST = "data.vision.ee.ethz.ch"  # Where tfds's div2k builder downloads the zips from.


def _resolves(host: str, seconds: float = 10.0) -> bool:
  """Whether ``host`` resolves within ``seconds`` (a thread: getaddrinfo has no timeout of its own)."""
  done: list[bool] = []

  def lookup() -> None:
    try:
      socket.getaddrinfo(host, 443)
      done.append(True)
    except OSError:
      done.append(False)

  thread = threading.Thread(target=lookup, daemon=True)
  thread.start()
  thread.join(seconds)
  return bool(done and done[0])


def _check_offline(tfds, name: str, data_dir: str | None, manual_dir: str | None) -> None:
  """Refuses at once what would otherwise be minutes of tfds's download retries (10, backing off to 100 s) on a
  host without a network: a dataset not prepared, no zips in the manual directory, and a host that does not
  resolve."""
  if tfds.core.DatasetBuilder.download_and_prepare.__module__ != "tensorflow_datasets.core.dataset_builder":
    return  # Replaced (tfds.testing.mock_data): nothing would be downloaded.
  builder = tfds.builder(name, data_dir=data_dir)
  if builder.is_prepared():
    return
  manual = manual_dir or os.path.join(data_dir or os.path.expanduser("~/tensorflow_datasets"), "downloads", "manual")
  if os.path.isdir(manual) and any(f.startswith("DIV2K_") and f.endswith(".zip") for f in os.listdir(manual)):
    return
  if not _resolves(HOST):
    raise DatasetUnavailableError(f"tfds:{name}: not prepared in {builder.data_dir} and {HOST} (where it "
                                  "downloads from) cannot be resolved: this machine looks offline.\n"
                                  + MANUAL_INSTRUCTIONS.format(manual_dir=manual))


def _load(name: str, split: str, data_dir: str | None, manual_dir: str | None):
  import tensorflow_datasets as tfds  # Heavy and only needed for tfds sources.
  if name.startswith("div2k"):
    _check_offline(tfds, name, data_dir, manual_dir)
  kwargs = {}
  if manual_dir:
    kwargs["download_and_prepare_kwargs"] = {
        "download_config": tfds.download.DownloadConfig(manual_dir=manual_dir)}
  try:
    return tfds.as_numpy(tfds.load(name, split=split, data_dir=data_dir, shuffle_files=False, **kwargs))
  except (tfds.core.registered.DatasetNotFoundError, ValueError):
    raise
  except Exception as e:  # Network errors, checksum mismatches, missing manual files.
    root = data_dir or os.path.expanduser("~/tensorflow_datasets")
    where = manual_dir or os.path.join(root, "downloads", "manual")
    raise DatasetUnavailableError(f"tfds:{name}:{split}: {type(e).__name__}: {e}\n"
                       + MANUAL_INSTRUCTIONS.format(manual_dir=where)) from e


def iter_examples(arg: str, *, data_dir: str | None = None, manual_dir: str | None = None,
                  keep_gray: bool = False, scale: int = 0) -> Iterator[tuple[str, np.ndarray, np.ndarray | None]]:
  """(name, HR, LR or None) of each example of ``NAME[:SPLIT]`` (e.g. ``div2k/bicubic_x2:validation``), one at a time.

  With ``scale`` > 0 the dataset's own LR image comes too, and HR is cropped to exactly ``scale`` times it
  (top-left aligned, as DIV2K's were made). Names are DIV2K's file numbers (0001-0800 train, 0801-0900 validation).
  """
  name, _, split = arg.partition(":")
  split = split or "train"
  first = 801 if split == "validation" else 1
  for i, example in enumerate(_load(name, split, data_dir, manual_dir)):
    hr, lr = example["hr"], example["lr"] if scale else None
    if not keep_gray:
      hr, lr = color.gray_to_rgb(hr), None if lr is None else color.gray_to_rgb(lr)
    if scale:
      if hr.shape[0] < lr.shape[0] * scale or hr.shape[1] < lr.shape[1] * scale:
        raise DataError(f"tfds:{arg} example {i}: HR {hr.shape[:2]} is not x{scale} of LR {lr.shape[:2]}; "
                        "is data.lr_from_dataset used with the matching div2k/..._x<scale> config?")
      hr = hr[:lr.shape[0] * scale, :lr.shape[1] * scale]
    yield f"{first + i:04d}", hr, lr


def load_hr_images(arg: str, *, data_dir: str | None = None, manual_dir: str | None = None,
                   keep_gray: bool = False, scale: int = 0
                   ) -> tuple[list[str], list[np.ndarray], list[np.ndarray] | None]:
  """(names, HR images, LR images or None) of a whole split: ``iter_examples`` collected."""
  examples = list(iter_examples(arg, data_dir=data_dir, manual_dir=manual_dir, keep_gray=keep_gray, scale=scale))
  names, hrs, lrs = (list(x) for x in zip(*examples)) if examples else ([], [], [])
  return names, hrs, (lrs if scale else None)
