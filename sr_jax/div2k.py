"""DIV2K through tensorflow-datasets (the ``tfds:`` source kind)."""

from __future__ import annotations

import numpy as np


def load_hr_images(arg: str, *, data_dir: str | None = None, keep_gray: bool = False
                   ) -> tuple[list[str], list[np.ndarray]]:
  """HR images of ``NAME[:SPLIT]`` (e.g. ``div2k/bicubic_x2:validation``; default split 'train')."""
  import tensorflow_datasets as tfds
  name, _, split = arg.partition(":")
  ds = tfds.load(name, split=split or "train", data_dir=data_dir, shuffle_files=False)
  names, images = [], []
  for i, example in enumerate(tfds.as_numpy(ds)):
    hr = example["hr"]
    if hr.shape[-1] == 1 and not keep_gray:
      hr = np.repeat(hr, 3, axis=-1)
    names.append(f"{i:04d}")
    images.append(hr)
  return names, images


def validation_pairs(scale: int, *, data_dir: str | None = None):
  """DIV2K validation at ``scale`` as test pairs, scored on the LR images DIV2K ships (MATLAB-made)."""
  import tensorflow_datasets as tfds
  from sr_jax import eval_lib, imresize, metrics
  ds = tfds.load(f"div2k/bicubic_x{scale}", split="validation", data_dir=data_dir, shuffle_files=False)
  pairs = []
  for i, example in enumerate(tfds.as_numpy(ds)):
    lr = example["lr"]
    hr = imresize.modcrop(example["hr"], scale)[:lr.shape[0] * scale, :lr.shape[1] * scale]
    bic = imresize.to_uint8(imresize.imresize(lr / 255.0, scale))
    pairs.append(eval_lib.TestPair(f"{801 + i:04d}", hr, lr, bic, metrics.psnr(bic, hr, shave=scale),
                                   metrics.ssim(bic, hr, shave=scale)))
  return pairs
