"""NIQE against MATLAB's published figure, and its behaviour on degraded images."""

import numpy as np
import pytest

from sr_jax.image import image_io, imresize
from sr_jax.metrics import niqe


def test_matlab_reference_value_on_the_baboon_crop(data_dir):
  """BasicSR's test image is the top-left 480 rows x 492 columns of Set14's baboon; MATLAB R2021a: 5.72957338."""
  img = image_io.read_image(f"{data_dir}/Set14/baboon.png")[:480, :492]
  assert niqe.niqe(img) == pytest.approx(5.72957338, abs=1e-3)
  gray = np.round(image_io.read_image(f"{data_dir}/Set14/bridge.png", keep_gray=True))
  assert 0 < niqe.niqe(gray, crop_border=4) < 20  # Gray images are scored on their own values.


def test_blur_raises_niqe_and_small_images_are_refused(data_dir):
  img = image_io.read_image(f"{data_dir}/Set14/baboon.png")
  blurred = imresize.to_uint8(imresize.imresize(imresize.imresize(img / 255.0, 0.25), 4.0))
  assert niqe.niqe(blurred) > niqe.niqe(img) + 1  # 7.66 vs 5.73 measured
  with pytest.raises(ValueError, match="at least two 96x96 blocks"):
    niqe.niqe(img[:100, :100])
