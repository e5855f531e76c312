import math

import numpy as np
import pytest

from sr_jax import metrics
from sr_jax.image import color


def _img(seed=0, shape=(40, 36, 3)):
  return np.random.default_rng(seed).integers(0, 256, shape).astype(np.uint8)


def test_identical_images():
  a = _img()
  assert metrics.psnr(a, a, shave=2) == math.inf
  assert metrics.ssim(a, a, shave=2) == pytest.approx(1.0)


def test_known_mse_gives_known_psnr():
  hr = np.full((20, 20), 100, np.uint8)
  sr = hr.copy()
  sr[::2] += 4  # Half the pixels off by 4 -> MSE 8 on a gray image (scored on its own values).
  assert metrics.psnr(sr, hr) == pytest.approx(10 * math.log10(255**2 / 8), abs=1e-9)
  # RGB gray pair: Y differs by 4 * 219/255 on half the pixels.
  sr_rgb, hr_rgb = (np.repeat(x[..., None], 3, -1) for x in (sr, hr))
  mse_y = 0.5 * (4 * 219 / 255) ** 2
  assert metrics.psnr(sr_rgb, hr_rgb) == pytest.approx(10 * math.log10(255**2 / mse_y), abs=1e-6)


def test_y_channel_is_matlab_rgb2ycbcr():
  assert color.rgb_to_y(np.array([0, 0, 0])) == pytest.approx(16)
  assert color.rgb_to_y(np.array([255, 255, 255])) == pytest.approx(235)
  assert color.rgb_to_y(np.array([255, 0, 0])) == pytest.approx(16 + 65.481)


def test_gray_ground_truth_scored_on_its_own_values():
  gray = _img(1, (30, 30, 1))[..., 0]
  sr = np.repeat(np.clip(gray.astype(int) + 3, 0, 255).astype(np.uint8)[..., None], 3, -1)
  expected = metrics.psnr(np.clip(gray.astype(int) + 3, 0, 255).astype(np.uint8), gray)
  assert metrics.psnr(sr, gray) == pytest.approx(expected, abs=1e-6)  # RGB SR vs gray GT: luma, not 16-235 Y.
  assert metrics.psnr(sr, np.repeat(gray[..., None], 3, -1)) > expected  # Y compresses the range.


def test_shave_and_rgb_mode():
  hr = _img(2)
  sr = hr.copy()
  sr[:2] = 0  # Damage only the border rows.
  assert metrics.psnr(sr, hr, shave=2) == math.inf
  assert metrics.psnr(sr, hr, shave=0) < 30
  assert metrics.psnr(sr, hr, mode="rgb") < metrics.psnr(sr, hr, mode="y") + 5


def test_ssim_drops_with_noise():
  hr = _img(3, (64, 64, 3))
  noisy = np.clip(hr.astype(int) + np.random.default_rng(4).integers(-30, 30, hr.shape), 0, 255).astype(np.uint8)
  assert 0 < metrics.ssim(noisy, hr) < 0.99


def test_bad_inputs():
  with pytest.raises(TypeError, match="uint8"):
    metrics.psnr(np.zeros((8, 8, 3)), np.zeros((8, 8, 3), np.uint8))
  with pytest.raises(ValueError, match="differ in size"):
    metrics.psnr(_img(0, (8, 8, 3)), _img(0, (9, 8, 3)))
  with pytest.raises(ValueError, match="too small"):
    metrics.psnr(_img(0, (8, 8, 3)), _img(0, (8, 8, 3)), shave=4)
  with pytest.raises(ValueError, match="mode"):
    metrics.psnr(_img(), _img(), mode="lab")
