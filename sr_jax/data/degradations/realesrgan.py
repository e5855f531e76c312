"""Real-ESRGAN's second-order degradation model (Wang et al., ICCVW 2021) on one HR patch, in NumPy.

``degrade(hr, rng, spec, scale)`` follows BasicSR's ``RealESRGANModel.feed_data`` (and the kernels of its
``RealESRGANDataset``) for one image: the HR is USM-sharpened; then blur (kernel 1), random resize (up, down or
keep; area, bilinear or bicubic), Gaussian or Poisson noise (colour or gray), JPEG; a second stage (blur with
``second_blur_prob``, resize to the LR size times a random factor, noise, JPEG); and, in random order,
[resize to the LR size + the final sinc filter] and JPEG; the LR is rounded to 8 bits. Every range and
probability is a field of ``Spec`` (the defaults are train_realesrgan_x4plus.yml's), set from
``config.realesrgan``. ``second_order=False`` keeps one stage (blur + resize + noise + JPEG, then the resize to
the LR size), and any step's probability can be 0, for ablations.

The random draws come from ``rng``: the caller seeds it with (seed, patch index), so the degradation of patch
*i* is a pure function of both, like its crop. Differences from BasicSR, by design: JPEG is real libjpeg at an
integer quality (BasicSR trains with DiffJPEG at a continuous one); the patch itself is degraded (BasicSR
degrades a 400² crop and then crops the training patch from it, so blur borders fall outside the patch);
BasicSR's pool of 180 past samples that it mixes into each batch (``_dequeue_and_enqueue``) is not kept: the
pipeline's per-epoch permutation already mixes images.
"""

from __future__ import annotations

import dataclasses
import zlib

import ml_collections
import numpy as np

from sr_jax.core.errors import require
from sr_jax.data.degradations import kernels, ops


@dataclasses.dataclass(frozen=True)
class Stage:
  blur_prob: float = 1.0
  kernel: kernels.KernelSpec = kernels.KernelSpec()
  resize_prob: tuple[float, float, float] = (0.2, 0.7, 0.1)  # Up, down, keep.
  resize_range: tuple[float, float] = (0.15, 1.5)
  gaussian_noise_prob: float = 0.5  # Else Poisson.
  noise_range: tuple[float, float] = (1.0, 30.0)  # Gaussian sigma, 0-255 scale.
  poisson_scale_range: tuple[float, float] = (0.05, 3.0)
  gray_noise_prob: float = 0.4
  jpeg_range: tuple[float, float] = (30.0, 95.0)


SECOND = Stage(blur_prob=0.8, kernel=kernels.KernelSpec(sigma=(0.2, 1.5)), resize_prob=(0.3, 0.4, 0.3),
               resize_range=(0.3, 1.2), noise_range=(1.0, 25.0), poisson_scale_range=(0.05, 2.5))


@dataclasses.dataclass(frozen=True)
class Spec:
  first: Stage = Stage()
  second: Stage = SECOND
  second_order: bool = True
  final_sinc_prob: float = 0.8
  usm_target: bool = True  # Train against the USM-sharpened HR (RealESRNet's gt_usm).


def _resize_factor(rng: np.random.Generator, stage: Stage) -> float:
  kind = rng.choice(3, p=np.asarray(stage.resize_prob) / np.sum(stage.resize_prob))
  lo, hi = stage.resize_range
  return float(rng.uniform(1, hi)) if kind == 0 else float(rng.uniform(lo, 1)) if kind == 1 else 1.0


def _noise(img: np.ndarray, rng: np.random.Generator, stage: Stage) -> np.ndarray:
  gaussian = rng.uniform() < stage.gaussian_noise_prob
  level = rng.uniform(*(stage.noise_range if gaussian else stage.poisson_scale_range))
  gray = rng.uniform() < stage.gray_noise_prob
  noise = ops.gaussian_noise(img.shape, rng, level, gray) if gaussian else ops.poisson_noise(img, rng, level, gray)
  return np.clip(img + noise, 0.0, 1.0)


def _jpeg(img: np.ndarray, rng: np.random.Generator, stage: Stage) -> np.ndarray:
  return ops.jpeg(img, int(round(rng.uniform(*stage.jpeg_range))))


def _mode(rng: np.random.Generator) -> str:
  return ops.RESIZE_MODES[int(rng.integers(3))]


def degrade(hr: np.ndarray, rng: np.random.Generator, spec: Spec, scale: int) -> tuple[np.ndarray, np.ndarray]:
  """(LR uint8 (H/s, W/s, 3), HR target uint8 (H, W, 3)) of a uint8 HR patch (H, W divisible by ``scale``)."""
  h, w = hr.shape[:2]
  gt = ops.usm_sharp(ops.planes(hr))
  k1, k2 = kernels.sample_kernel(rng, spec.first.kernel), kernels.sample_kernel(rng, spec.second.kernel)
  sinc = kernels.final_sinc(rng, spec.final_sinc_prob)
  out = ops.filter2d(gt, k1) if rng.uniform() < spec.first.blur_prob else gt
  f = _resize_factor(rng, spec.first)
  out = ops.resize(out, (max(1, int(h * f)), max(1, int(w * f))), _mode(rng), scale=f)
  out = _jpeg(_noise(out, rng, spec.first), rng, spec.first)
  final = spec.second if spec.second_order else spec.first
  if spec.second_order:
    out = ops.filter2d(out, k2) if rng.uniform() < spec.second.blur_prob else out
    f = _resize_factor(rng, spec.second)
    out = ops.resize(out, (max(1, int(h / scale * f)), max(1, int(w / scale * f))), _mode(rng))
    out = _noise(out, rng, spec.second)
  if rng.uniform() < 0.5:  # [resize back + sinc] then JPEG, or the other way round.
    out = _jpeg(ops.filter2d(ops.resize(out, (h // scale, w // scale), _mode(rng)), sinc), rng, final)
  else:
    out = ops.filter2d(ops.resize(_jpeg(out, rng, final), (h // scale, w // scale), _mode(rng)), sinc)
  return ops.to_uint8(out), (ops.to_uint8(gt) if spec.usm_target else hr)


def default_config() -> ml_collections.ConfigDict:
  """config.realesrgan with the paper's values (train_realesrgan_x4plus.yml)."""
  c = ml_collections.ConfigDict()
  for prefix, stage in (("", Stage()), ("2", SECOND)):
    k = stage.kernel
    c[f"kernel_probs{prefix}"] = k.probs  # iso, aniso, generalized_iso/aniso, plateau_iso/aniso.
    c[f"sinc_prob{prefix}"] = k.sinc_prob
    c[f"blur_sigma{prefix}"] = k.sigma
    c[f"betag_range{prefix}"] = k.betag
    c[f"betap_range{prefix}"] = k.betap
    c[f"resize_prob{prefix}"] = stage.resize_prob
    c[f"resize_range{prefix}"] = stage.resize_range
    c[f"gaussian_noise_prob{prefix}"] = stage.gaussian_noise_prob
    c[f"noise_range{prefix}"] = stage.noise_range
    c[f"poisson_scale_range{prefix}"] = stage.poisson_scale_range
    c[f"gray_noise_prob{prefix}"] = stage.gray_noise_prob
    c[f"jpeg_range{prefix}"] = stage.jpeg_range
  c.blur_prob = 1.0
  c.second_blur_prob = SECOND.blur_prob
  c.kernel_sizes = kernels.KernelSpec.sizes
  c.final_sinc_prob = 0.8
  c.second_order = True
  c.usm_target = True
  return c


def from_data_config(config: ml_collections.ConfigDict) -> Spec | None:
  """The Spec of a training config when config.data.degradation is 'realesrgan', else None (bicubic)."""
  return spec_from_config(config.realesrgan) if config.data.degradation == "realesrgan" else None


def validation_lr(hr: np.ndarray, spec: Spec, scale: int, key: str) -> np.ndarray:
  """The fixed degraded LR of a validation image (modcropped, RGB): the same for every validation of every run,
  seeded by ``key`` (set and image name) alone."""
  rng = np.random.default_rng([3, zlib.crc32(key.encode())])
  return degrade(hr, rng, spec, scale)[0]


def spec_from_config(c: ml_collections.ConfigDict) -> Spec:
  stages = []
  for prefix, blur_prob in (("", c.blur_prob), ("2", c.second_blur_prob)):
    kernel = kernels.KernelSpec(probs=tuple(c[f"kernel_probs{prefix}"]), sinc_prob=c[f"sinc_prob{prefix}"],
                                sigma=tuple(c[f"blur_sigma{prefix}"]), betag=tuple(c[f"betag_range{prefix}"]),
                                betap=tuple(c[f"betap_range{prefix}"]), sizes=tuple(c.kernel_sizes))
    stages.append(Stage(blur_prob, kernel, tuple(c[f"resize_prob{prefix}"]), tuple(c[f"resize_range{prefix}"]),
                        c[f"gaussian_noise_prob{prefix}"], tuple(c[f"noise_range{prefix}"]),
                        tuple(c[f"poisson_scale_range{prefix}"]), c[f"gray_noise_prob{prefix}"],
                        tuple(c[f"jpeg_range{prefix}"])))
  return Spec(stages[0], stages[1], bool(c.second_order), c.final_sinc_prob, bool(c.usm_target))


def validate(c: ml_collections.ConfigDict) -> None:
  """config.realesrgan: probabilities in [0, 1], ordered ranges, odd kernel sizes up to 21, JPEG qualities."""
  def prob(key):
    require(0 <= c[key] <= 1, f"realesrgan.{key}", c[key], "a probability in [0, 1]")

  def ordered(key, lo=0.0, hi=float("inf")):
    v = tuple(c[key])
    require(len(v) == 2 and lo <= v[0] <= v[1] <= hi, f"realesrgan.{key}", c[key], f"(low, high) within [{lo}, {hi}]")

  def weights(key, n):
    v = tuple(c[key])
    require(len(v) == n and min(v) >= 0 and sum(v) > 0, f"realesrgan.{key}", c[key],
             f"{n} non-negative weights, not all 0")

  for key in ("blur_prob", "second_blur_prob", "final_sinc_prob"):
    prob(key)
  for s in ("", "2"):
    for key in ("sinc_prob", "gaussian_noise_prob", "gray_noise_prob"):
      prob(key + s)
    weights("kernel_probs" + s, 6)
    weights("resize_prob" + s, 3)
    ordered("blur_sigma" + s, lo=1e-3)
    ordered("betag_range" + s, lo=1e-3)
    ordered("betap_range" + s, lo=1e-3)
    ordered("resize_range" + s, lo=1e-2)
    ordered("noise_range" + s)
    ordered("poisson_scale_range" + s)
    ordered("jpeg_range" + s, lo=1, hi=100)
  sizes = tuple(c.kernel_sizes)
  require(len(sizes) > 0 and all(k % 2 == 1 and 3 <= k <= 21 for k in sizes), "realesrgan.kernel_sizes",
           c.kernel_sizes, "odd sizes from 3 to 21")
