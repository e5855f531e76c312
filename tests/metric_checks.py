"""Checks every full-reference perceptual metric must pass (LPIPS, DISTS): shared by their tests."""

import os

import pytest

from sr_jax.image import image_io, imresize


def zero_for_identical_and_grows_with_blur(scorer, data_dir: str, tol: float) -> list[float]:
  """``scorer(a, b)`` of uint8 images: ~0 for identical ones (RGB and gray), rising with x2, x4, x8 blur; returns
  the three blurred images' scores."""
  hr = image_io.read_image(os.path.join(data_dir, "Set5", "butterfly.png"))
  assert scorer(hr, hr) == pytest.approx(0.0, abs=tol)
  blurred = [imresize.to_uint8(imresize.imresize(imresize.imresize(hr / 255.0, 1 / s), float(s))) for s in (2, 4, 8)]
  scores = [scorer(hr, b) for b in blurred]
  assert 0 < scores[0] < scores[1] < scores[2], scores
  gray = hr[..., 0]
  assert scorer(gray, gray) == pytest.approx(0.0, abs=tol)
  return scores
