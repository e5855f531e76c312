"""DIV2K through tensorflow-datasets (the ``tfds:`` source kind and ``evaluate --datasets=div2k``).

tfds's ``div2k/<config>`` builders (bicubic_x2/x3/x4, unknown_x2/x3/x4, ...) download the official zips on
first use and prepare them under ``data_dir`` (default ~/tensorflow_datasets). Offline, put the official zips
in the manual directory (default ``<data_dir>/downloads/manual``, or config.data.tfds_manual_dir); they are
used instead of downloading (tfds still checks their checksums). See ``MANUAL_INSTRUCTIONS``.
"""

from __future__ import annotations

import numpy as np

MANUAL_INSTRUCTIONS = """\
DIV2K could not be downloaded or prepared. On a connected machine the first use downloads it. Offline, copy
the official zips (https://data.vision.ee.ethz.ch/cvl/DIV2K/) into the tfds manual directory
({manual_dir}) and run again:
  DIV2K_train_HR.zip and DIV2K_valid_HR.zip (always), and for div2k/bicubic_xS:
  DIV2K_train_LR_bicubic_XS.zip and DIV2K_valid_LR_bicubic_XS.zip (S = 2, 3 or 4; unknown_xS: ..._LR_unknown_XS.zip)."""


def _load(name: str, split: str, data_dir: str | None, manual_dir: str | None):
  import os

  import tensorflow_datasets as tfds
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
    raise RuntimeError(f"tfds:{name}:{split}: {type(e).__name__}: {e}\n"
                       + MANUAL_INSTRUCTIONS.format(manual_dir=where)) from e


def load_hr_images(arg: str, *, data_dir: str | None = None, manual_dir: str | None = None,
                   keep_gray: bool = False, scale: int = 0
                   ) -> tuple[list[str], list[np.ndarray], list[np.ndarray] | None]:
  """(names, HR images, LR images) of ``NAME[:SPLIT]`` (e.g. ``div2k/bicubic_x2:validation``; split 'train').

  With ``scale`` > 0 the dataset's own LR images are returned too, each HR cropped to exactly ``scale`` times
  its LR (top-left aligned, as DIV2K's were made); otherwise the LR list is None.
  """
  name, _, split = arg.partition(":")
  names, images, lrs = [], [], []
  for i, example in enumerate(_load(name, split or "train", data_dir, manual_dir)):
    hr = example["hr"]
    if hr.shape[-1] == 1 and not keep_gray:
      hr = np.repeat(hr, 3, axis=-1)
    if scale:
      lr = example["lr"]
      if lr.shape[-1] == 1 and not keep_gray:
        lr = np.repeat(lr, 3, axis=-1)
      if hr.shape[0] < lr.shape[0] * scale or hr.shape[1] < lr.shape[1] * scale:
        raise ValueError(f"tfds:{arg} example {i}: HR {hr.shape[:2]} is not x{scale} of LR {lr.shape[:2]}; "
                         "is data.lr_from_dataset used with the matching div2k/..._x<scale> config?")
      hr = hr[:lr.shape[0] * scale, :lr.shape[1] * scale]
      lrs.append(lr)
    names.append(f"{i:04d}")
    images.append(hr)
  return names, images, (lrs if scale else None)


def validation_pairs(scale: int, *, data_dir: str | None = None, manual_dir: str | None = None):
  """DIV2K validation at ``scale`` as test pairs, scored on the LR images DIV2K ships (MATLAB-made)."""
  from sr_jax import eval_lib, imresize, metrics
  pairs = []
  for i, example in enumerate(_load(f"div2k/bicubic_x{scale}", "validation", data_dir, manual_dir)):
    lr = example["lr"]
    hr = imresize.modcrop(example["hr"], scale)[:lr.shape[0] * scale, :lr.shape[1] * scale]
    bic = imresize.to_uint8(imresize.imresize(lr / 255.0, scale))
    pairs.append(eval_lib.TestPair(f"{801 + i:04d}", hr, lr, bic, metrics.psnr(bic, hr, shave=scale),
                                   metrics.ssim(bic, hr, shave=scale)))
  return pairs
