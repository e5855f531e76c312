"""Real-ESRGAN degradations: blur kernels equal BasicSR's (golden: tests/golden/realesrgan_kernels.py)."""

import math
import os

import numpy as np
import pytest

from sr_jax.data.degradations import kernels

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden", "realesrgan_kernels.npz")
OURS = {
    "iso_21_s1.3": lambda: kernels.gaussian(21, 1.3),
    "aniso_21_s2.5_0.7_t0.6": lambda: kernels.gaussian(21, 2.5, 0.7, 0.6, isotropic=False),
    "aniso_7_s0.4_2.9_t-2.2": lambda: kernels.gaussian(7, 0.4, 2.9, -2.2, isotropic=False),
    "gen_iso_15_s1.8_b0.6": lambda: kernels.generalized_gaussian(15, 1.8, 1.8, 0.0, 0.6),
    "gen_aniso_21_s3_1_t1.1_b3.5": lambda: kernels.generalized_gaussian(21, 3.0, 1.0, 1.1, 3.5, isotropic=False),
    "plateau_iso_11_s0.9_b1.7": lambda: kernels.plateau(11, 0.9, 0.9, 0.0, 1.7),
    "plateau_aniso_21_s2_0.5_t-0.4_b1.2": lambda: kernels.plateau(21, 2.0, 0.5, -0.4, 1.2, isotropic=False),
    "sinc_21_c0.9": lambda: kernels.sinc(0.9, 21),
    "sinc_9_c2.5_pad21": lambda: kernels.sinc(2.5, 9, pad_to=21),
    "sinc_13_pi": lambda: kernels.sinc(math.pi, 13),
}


def test_kernels_equal_basicsr_on_fixed_parameters():
  golden = np.load(GOLDEN)
  assert set(golden.files) == set(OURS)
  for name, make in OURS.items():
    ours = make()
    assert ours.shape == golden[name].shape, name
    np.testing.assert_allclose(ours, golden[name], atol=1e-6, rtol=0, err_msg=name)
    assert ours.sum() == pytest.approx(1.0, abs=1e-9)


def test_anisotropic_kernel_is_elongated_along_its_angle():
  k = kernels.gaussian(21, 4.0, 0.5, 0.0, isotropic=False)  # Wide along x (columns), narrow along y (rows).
  assert k[10].sum() > 5 * k[:, 10].sum()
  np.testing.assert_allclose(kernels.gaussian(21, 4.0, 0.5, np.pi / 2, isotropic=False), k.T, atol=1e-12)


def test_sampling_is_a_pure_function_of_the_generator_and_covers_every_type():
  spec = kernels.KernelSpec()
  a = [kernels.sample_kernel(np.random.default_rng([7, i]), spec) for i in range(200)]
  b = [kernels.sample_kernel(np.random.default_rng([7, i]), spec) for i in range(200)]
  assert all(np.array_equal(x, y) for x, y in zip(a, b))
  assert all(k.shape == (21, 21) and abs(k.sum() - 1) < 1e-9 for k in a)
  assert len({k.tobytes() for k in a}) == 200
  negative = sum((k < -1e-12).any() for k in a)  # Only sinc kernels have negative lobes: ~10% of draws.
  assert 5 <= negative <= 40, negative
  with pytest.raises(ValueError, match="odd"):
    kernels.gaussian(8, 1.0)


def test_final_sinc_is_a_pulse_or_a_sinc():
  pulses = sum(np.count_nonzero(kernels.final_sinc(np.random.default_rng([1, i]))) == 1 for i in range(300))
  assert 30 <= pulses <= 90  # 1 - final_sinc_prob = 20% of 300.


# ------------------------------------------------------------------ ops
from sr_jax.data.degradations import ops  # noqa: E402

RNG = np.random.default_rng(0)
IMG = RNG.random((37, 53, 3)).astype(np.float32)  # (H, W, C); the ops take planes (C, H, W).
PLANES = np.ascontiguousarray(IMG.transpose(2, 0, 1))
hwc = lambda x: x.transpose(1, 2, 0)


def _filter_kernel(kind: str) -> np.ndarray:
  if kind.startswith("random"):
    k = RNG.random((7, 7))
    return k / k.sum()
  if kind.startswith("isotropic"):
    return kernels.gaussian(7, 1.3)
  if kind.startswith("rotated"):
    return kernels.pad(kernels.gaussian(7, 0.2, 0.4, 1.5, isotropic=False), 21)  # Two terms.
  return kernels.final_sinc(np.random.default_rng(0), prob=0.0)


@pytest.mark.parametrize("kind", ["random (by FFT)", "isotropic Gaussian (one banded term)",
                                  "rotated Gaussian zero-padded to 21 (several banded terms)", "identity pulse"])
def test_filter2d_is_reflect_padded_correlation(kind):
  k = _filter_kernel(kind)
  trimmed = ops._trimmed(k)
  terms = ops._outer_terms(trimmed, ops._max_rank(37 * 53))  # The path under test:
  assert (len(terms), trimmed.shape[0]) == {"ra": (0, 7), "is": (1, 7), "ro": (2, 7), "id": (1, 1)}[kind[:2]]
  p = k.shape[0] // 2
  padded = np.pad(IMG, ((p, p), (p, p), (0, 0)), mode="reflect")  # torch 'reflect': no edge repeat.
  ref = np.zeros_like(IMG)
  for dy in range(k.shape[0]):
    for dx in range(k.shape[1]):
      ref += k[dy, dx] * padded[dy:dy + 37, dx:dx + 53]
  np.testing.assert_allclose(hwc(ops.filter2d(PLANES, k)), ref, atol=1e-5)


def test_poisson_tables_sample_the_poisson_distribution():
  from scipy import stats
  from sr_jax.data.degradations import poisson
  for levels, level in ((256, 0), (256, 1), (256, 128), (256, 255), (64, 77), (1, 200)):
    p = poisson.pmf(levels, level)  # What the alias tables draw, recovered exactly from them.
    np.testing.assert_allclose(p, stats.poisson.pmf(np.arange(len(p)), level / 255 * levels), rtol=0, atol=1e-14)
  draws = poisson.sample(np.full(200_000, 3, np.uint8), 256, np.random.default_rng(0))
  rate = 3 / 255 * 256
  assert draws.mean() == pytest.approx(rate, rel=0.01) and draws.var() == pytest.approx(rate, rel=0.02)


def _torch_bicubic_1d(x: np.ndarray, n_out: int, a: float = -0.75) -> np.ndarray:
  """PyTorch's upsample_bicubic2d along one axis, transcribed loop by loop (align_corners=False)."""
  n_in = x.shape[0]
  out = np.zeros((n_out,) + x.shape[1:], np.float64)

  def w(t):
    t = abs(t)
    return ((a + 2) * t - (a + 3)) * t * t + 1 if t <= 1 else (((a * t - 5 * a) * t + 8 * a) * t - 4 * a if t < 2
                                                                 else 0.0)
  for i in range(n_out):
    real = (n_in / n_out) * (i + 0.5) - 0.5
    i0 = int(np.floor(real))
    t = real - i0
    for j in range(-1, 3):
      out[i] += w(t - j) * x[min(max(i0 + j, 0), n_in - 1)]
  return out


def test_resize_follows_torch_interpolate():
  import tensorflow as tf
  for size in ((20, 30), (80, 90), (37, 53)):
    # Bilinear: TensorFlow's half-pixel bilinear is the same function as torch's (align_corners=False).
    np.testing.assert_allclose(hwc(ops.resize(PLANES, size, "bilinear")),
                               tf.image.resize(IMG[None], size, "bilinear").numpy()[0], atol=1e-5)
    ref = _torch_bicubic_1d(_torch_bicubic_1d(IMG, size[0]).transpose(1, 0, 2), size[1]).transpose(1, 0, 2)
    np.testing.assert_allclose(hwc(ops.resize(PLANES, size, "bicubic")), ref, atol=1e-5)
  blocks = IMG[:36, :52].reshape(9, 4, 13, 4, 3).mean(axis=(1, 3))  # 'area' = adaptive average pooling.
  np.testing.assert_allclose(hwc(ops.resize(PLANES[:, :36, :52], (9, 13), "area")), blocks, atol=1e-6)
  np.testing.assert_allclose(ops.resize(PLANES, (2, 2), "area")[:, 0, 0], IMG[:19, :27].mean(axis=(0, 1)), atol=1e-6)
  with pytest.raises(ValueError, match="resize mode 'nearest'"):
    ops.resize(PLANES, (5, 5), "nearest")


def test_noise_statistics():
  flat = np.full((3, 256, 256), 0.5, np.float32)
  n = ops.gaussian_noise(flat.shape, np.random.default_rng(1), 20.0, gray=False)
  assert abs(n.std() * 255 - 20) < 0.3 and abs(n.mean()) < 1e-3
  assert not np.array_equal(n[0], n[1])
  g = ops.gaussian_noise(flat.shape, np.random.default_rng(1), 20.0, gray=True)
  assert np.array_equal(g[0], g[2]) and abs(g.std() * 255 - 20) < 0.4
  # Poisson: variance = level / L (L = levels rounded up to a power of 2), times scale^2.
  img = np.repeat(np.linspace(0, 1, 256, dtype=np.float32)[None, None, :], 512, axis=1).repeat(3, axis=0)
  p = ops.poisson_noise(img, np.random.default_rng(2), 2.0, gray=False)
  col = 128  # Level 128/255 with L = 256 distinct levels: var = (128/255) / 256 * 2^2.
  assert p[:, :, col].var() == pytest.approx((128 / 255) / 256 * 4, rel=0.1)
  assert np.abs(p[:, :, 0]).max() == 0  # Black has no shot noise.
  pg = ops.poisson_noise(img, np.random.default_rng(2), 1.0, gray=True)
  assert np.array_equal(pg[0], pg[1])


def test_jpeg_round_trip_equals_libjpeg():
  import tensorflow as tf
  img = (np.clip(IMG * 0.2 + np.linspace(0, 0.8, 53)[None, :, None], 0, 1)).astype(np.float32)
  u8 = np.round(img * 255).astype(np.uint8)
  for q in (30, 60, 95):
    ref = tf.io.decode_jpeg(tf.io.encode_jpeg(u8, quality=q, chroma_downsampling=True),
                            dct_method="INTEGER_ACCURATE").numpy() / 255.0
    np.testing.assert_allclose(hwc(ops.jpeg(img.transpose(2, 0, 1), q)), ref, atol=1e-6)
  planes = img.transpose(2, 0, 1)
  assert np.abs(ops.jpeg(planes, 30) - planes).mean() > np.abs(ops.jpeg(planes, 95) - planes).mean()


def test_usm_sharpening_raises_contrast_at_edges_only():
  step = np.zeros((64, 64, 3), np.float32)
  step[:, 32:] = 0.8
  out = hwc(ops.usm_sharp(step.transpose(2, 0, 1)))
  assert out[:, 32].mean() > 0.81 and out[:, 31].max() == 0.0  # Overshoot on the bright side, clipped at 0.
  np.testing.assert_allclose(out[:, :5], 0.0, atol=1e-6)  # Flat areas untouched.
  np.testing.assert_allclose(out[:, -5:], 0.8, atol=1e-6)


def test_usm_blur_equals_the_2d_gaussian_filter():
  g = ops._gaussian_1d(51)
  assert g.argmax() == 25 and ops._gaussian_1d(51, 8.0) == pytest.approx(g)  # cv2: sigma 0 -> 8 for 51 taps.
  for shape in ((3, 80, 70), (3, 256, 200)):  # One block of rows, and several (banded products).
    big = RNG.random(shape).astype(np.float32)
    np.testing.assert_allclose(ops._separable(big, 51), ops.filter2d(big, np.outer(g, g)), atol=1e-5)


def test_degraded_validation_sets_are_fixed_per_image_and_seed_independent(test_config):
  from sr_jax.evaluation import eval_lib
  test_config.data.update(val="skimage:chelsea,coffee", max_val_images=2)
  bicubic = eval_lib.load_validation_sets(test_config)["chelsea_coffee"]
  test_config.data.degradation = "realesrgan"
  a = eval_lib.load_validation_sets(test_config)["chelsea_coffee"]
  test_config.seed = 5  # Another run's seed: the same validation inputs, so curves compare across runs.
  b = eval_lib.load_validation_sets(test_config)["chelsea_coffee"]
  for p, q, r in zip(a, b, bicubic):
    np.testing.assert_array_equal(p.lr, q.lr)
    np.testing.assert_array_equal(p.hr, r.hr)  # Scored against the plain HR.
    assert p.lr.shape == r.lr.shape and not np.array_equal(p.lr, r.lr)
    assert p.bicubic_psnr < r.bicubic_psnr  # Degraded inputs are harder.
  assert not np.array_equal(a[0].lr, a[1].lr[:a[0].lr.shape[0], :a[0].lr.shape[1]])
