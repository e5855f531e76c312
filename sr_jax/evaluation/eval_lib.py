"""Scoring SR against HR the papers' way, shared by in-training validation and ``sr_jax.cli.evaluate``.

``make_pairs`` turns HR images into the papers' test pairs (modcrop, LR = MATLAB bicubic rounded to uint8, or
the LR images a dataset ships) and scores the bicubic baseline once; ``score_set`` runs any
``upscale(lr_uint8) -> sr`` function (float, [0, 1] scale) over them; ``Validator`` does both for the
validation sets of a training config with the model on the device mesh.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from typing import Any, Callable

import jax
import ml_collections
from absl import logging
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from sr_jax import metrics
from sr_jax.core import boundary, heartbeat
from sr_jax.data import datasets
from sr_jax.data.degradations import realesrgan
from sr_jax.image import color, imresize
from sr_jax.models import registry


@dataclasses.dataclass
class TestPair:
  name: str
  hr: np.ndarray  # uint8, modcropped; HxW when the ground truth is gray.
  lr: np.ndarray  # uint8 HxWx3 model input (gray replicated to RGB).
  bicubic: np.ndarray  # uint8, MATLAB bicubic up-scaling of lr, same layout as hr.
  bicubic_psnr: float
  bicubic_ssim: float
  bicubic_extra: dict = dataclasses.field(default_factory=dict)  # LPIPS/NIQE of the bicubic image, on demand.


def min_eval_size(scale: int) -> int:
  """Smallest HR side that survives the shave and the 11x11 SSIM window."""
  return 2 * scale + 11 + scale


def make_pair(name: str, hr: np.ndarray, scale: int, lr: np.ndarray | None = None) -> TestPair:
  """One test pair. ``lr`` None: made from HR by MATLAB bicubic; else the dataset's own LR (HR cropped to it)."""
  if lr is None:
    hr = imresize.modcrop(hr, scale)
    lr = imresize.downscale_uint8(color.gray_to_rgb(hr), scale)
  else:
    hr = hr[:lr.shape[0] * scale, :lr.shape[1] * scale]
    lr = color.gray_to_rgb(lr)
  bic = imresize.to_uint8(imresize.imresize(lr / 255.0, scale))
  bic = bic if hr.ndim == 3 else bic[..., 0]  # Gray in -> R = G = B out.
  return TestPair(name, hr, lr, bic, metrics.psnr(bic, hr, shave=scale), metrics.ssim(bic, hr, shave=scale))


def prepare(image_set: datasets.ImageSet, scale: int, max_images: int = 0,
            degradation: realesrgan.Spec | None = None) -> list[TestPair]:
  """Test pairs of an image set (its own LR images when it has them), at most ``max_images`` (0: all);
  ``degradation``: LR made by Real-ESRGAN's model, fixed per image (realesrgan.validation_lr)."""
  count = len(image_set) if max_images <= 0 else min(max_images, len(image_set))
  lrs = image_set.lr_images
  pairs = []
  for i in range(count):
    hr, lr = image_set.get(i), None if lrs is None else lrs[i]
    if degradation is not None:
      hr = imresize.modcrop(hr, scale)
      lr = realesrgan.validation_lr(color.gray_to_rgb(hr), degradation, scale, f"{image_set.name}/{image_set.names[i]}")
    pairs.append(make_pair(image_set.names[i], hr, scale, lr))
  return pairs


def upscale_uint8(upscale: Callable[[np.ndarray], np.ndarray], pair: TestPair) -> np.ndarray:
  """The SR image of ``pair`` as uint8 in the layout of its HR (HxW for gray ground truths)."""
  sr = imresize.to_uint8(upscale(pair.lr))
  if sr.shape[:2] != pair.hr.shape[:2]:
    raise ValueError(f"{pair.name}: upscaled to {sr.shape[:2]}, expected {pair.hr.shape[:2]}")
  if pair.hr.ndim == 2 and sr.ndim == 3 and sr.shape[-1] == 1:
    sr = sr[..., 0]
  return sr


def score_pair(pair: TestPair, sr: np.ndarray, scale: int,
               extra: dict[str, metrics.MetricFn] | None = None) -> dict:
  """One image's row: PSNR/SSIM and each ``extra`` metric (``metrics.extra_scorers``) of SR, each beside bicubic's
  (whose extra metrics are computed once per pair and cached)."""
  row = {"image": pair.name, "psnr": metrics.psnr(sr, pair.hr, shave=scale),
         "ssim": metrics.ssim(sr, pair.hr, shave=scale), "bicubic_psnr": pair.bicubic_psnr,
         "bicubic_ssim": pair.bicubic_ssim}
  for name, fn in (extra or {}).items():
    row.update({name: fn(sr, pair.hr, scale), f"bicubic_{name}": bicubic_score(pair, name, fn, scale)})
  return row


# The bicubic images' extra metrics, shared by every evaluation in this process (sr-interpolate scores several
# blends on the same sets; the DISTS and NIQE of a B100 bicubic image cost what its SR image's do): keyed by the
# scorer and the bytes of HR and bicubic, so a different image, scale or scorer is scored anew.
_BICUBIC_SCORES: dict[tuple, float] = {}


def _scorer_key(fn: metrics.MetricFn) -> object:
  return (fn.func, tuple(sorted(fn.keywords.items()))) if isinstance(fn, functools.partial) else fn


def bicubic_score(pair: TestPair, name: str, fn: metrics.MetricFn, scale: int) -> float:
  """Metric ``name`` (scorer ``fn``) of the pair's bicubic image, computed once per pair and per process."""
  if name not in pair.bicubic_extra:
    key = (_scorer_key(fn), scale, pair.hr.shape, pair.bicubic.shape, hashlib.sha1(pair.hr.tobytes()).digest(),
           hashlib.sha1(pair.bicubic.tobytes()).digest())
    if key not in _BICUBIC_SCORES:
      _BICUBIC_SCORES[key] = fn(pair.bicubic, pair.hr, scale)
    pair.bicubic_extra[name] = _BICUBIC_SCORES[key]
  return pair.bicubic_extra[name]


def score_set(pairs: list[TestPair], upscale: Callable[[np.ndarray], np.ndarray], scale: int,
              keep_outputs: int = 0, extra: dict[str, metrics.MetricFn] | None = None,
              progress: heartbeat.Heartbeat | None = None, label: str = ""
              ) -> tuple[dict, list[dict], list[np.ndarray]]:
  """Returns (summary, per-image rows, the first ``keep_outputs`` uint8 SR images); ``progress`` hears how far
  it got after each image, as '``label``: k/n images'."""
  rows, outputs = [], []
  for k, pair in enumerate(pairs):
    sr = upscale_uint8(upscale, pair)
    rows.append(score_pair(pair, sr, scale, extra))
    if k < keep_outputs:
      outputs.append(sr)
    if progress is not None:
      progress.beat(lambda: f"{label}: {k + 1}/{len(pairs)} images")
  return summarize(rows), rows, outputs


def summarize(rows: list[dict]) -> dict:
  """Mean of each metric over images (PSNR averaged in dB, as the papers do; NaN entries, e.g. NIQE of an image
  too small for it, left out of the mean)."""
  keys = [k for k in rows[0] if k != "image"]
  summary = {k: float(np.nanmean([r[k] for r in rows])) if any(np.isfinite(r[k]) for r in rows) else float("nan")
             for k in keys}
  summary["num_images"] = len(rows)
  return summary


def triplet(pair: TestPair, sr: np.ndarray, size: int = 192) -> np.ndarray:
  """HR | bicubic | SR side by side (uint8 RGB), a centre crop of at most ``size`` pixels."""
  h, w = pair.hr.shape[:2]
  t, l = max(0, (h - size) // 2), max(0, (w - size) // 2)
  crop = lambda x: color.gray_to_rgb(x)[t:t + size, l:l + size]
  return np.concatenate([crop(pair.hr), crop(pair.bicubic), crop(sr)], axis=1)


def load_validation_sets(config: ml_collections.ConfigDict) -> dict[str, list[TestPair]]:
  """{set name: test pairs} of config.data.val ('+'-joined sources, each scored apart)."""
  d, scale = config.data, config.model.scale
  sets = {}
  for spec in datasets.split_sources(d.val):
    images = datasets.load_source(spec, data_dir=d.data_dir, tfds_data_dir=d.tfds_data_dir,
                                  tfds_manual_dir=d.tfds_manual_dir, keep_gray=True, max_pixels=d.max_image_pixels,
                                  min_size=min_eval_size(scale),
                                  lr_scale=scale if datasets.parse_source(spec)[0] == "paired" else 0)
    sets[images.name] = prepare(images, scale, d.max_val_images, realesrgan.from_data_config(config))
  return sets


def config_metrics(config: ml_collections.ConfigDict) -> list[str]:
  """config.val_metrics as a list ('psnr,ssim,lpips' -> ['psnr', 'ssim', 'lpips'])."""
  return [m.strip() for m in config.val_metrics.split(",") if m.strip()]


class Validator:
  """Full-image validation of parameters on the config's held-out sets, replicated on ``mesh``."""

  def __init__(self, config: ml_collections.ConfigDict, mesh: Mesh, graphdef: nnx.GraphDef):
    try:  # Fails before any compilation when LPIPS/DISTS weights are missing.
      self.extra = metrics.extra_scorers(config_metrics(config), config.lpips_weights)
    except metrics.MetricWeightsError as e:
      raise type(e)(f"config.val_metrics={config.val_metrics!r} (config.lpips_weights={config.lpips_weights!r}): "
                    f"{e}") from None
    self.scale = config.model.scale
    self.channels = config.model.channels
    self.num_triplets = config.num_image_triplets
    self.sets = load_validation_sets(config)
    self.replicated = NamedSharding(mesh, P())
    # The weights cross the jit boundary as their leaves (flattened once per validation), not as an nnx.State
    # flattened by Python for every image (core/boundary.py).
    self._predict = jax.jit(boundary.over_leaves(functools.partial(registry.predict, graphdef=graphdef)),
                            static_argnames="treedef", out_shardings=self.replicated)

  def upscale(self, params: nnx.State | tuple[list, Any], lr: np.ndarray) -> np.ndarray:
    leaves, treedef = params if isinstance(params, tuple) else jax.tree.flatten(params)
    x = jax.make_array_from_process_local_data(self.replicated, color.to_channels(lr, self.channels)[None])
    return np.asarray(self._predict(leaves, x, treedef=treedef).addressable_data(0))[0]

  def __call__(self, params: nnx.State) -> tuple[dict, dict]:
    """Returns ({set: summary}, {image tag: HR|bicubic|SR uint8 triplet})."""
    results, images = {}, {}
    upscale = functools.partial(self.upscale, jax.tree.flatten(params))  # Flattened once for every image.
    beat = heartbeat.Heartbeat(logging.info)  # A line every 10 s of a slow validation (a big model on a CPU).
    for name, pairs in self.sets.items():
      summary, _, outputs = score_set(pairs, upscale, self.scale, keep_outputs=self.num_triplets, extra=self.extra,
                                      progress=beat, label=f"validation {name}")
      results[name] = summary
      for pair, sr in zip(pairs, outputs):
        images[f"val/{name}/{pair.name}"] = triplet(pair, sr)[None]
    return results, images
