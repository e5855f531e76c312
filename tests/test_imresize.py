import numpy as np
import pytest

from sr_jax.image import imresize

SCALES = (2, 3, 4)


@pytest.fixture(scope="module")
def golden(data_dir):
  return np.load(f"{data_dir}/golden/matlab_imresize.npz")


@pytest.mark.parametrize("name", ["butterfly", "woman"])
@pytest.mark.parametrize("scale", SCALES)
def test_matches_matlab_golden(golden, name, scale):
  hr = golden[f"{name}_hr"]
  down = imresize.imresize(imresize.modcrop(hr, scale) / 255.0, 1.0 / scale)
  np.testing.assert_allclose(down, golden[f"{name}_x{scale}_down"], atol=1e-5, rtol=0)
  # The golden up-scaling starts from the float32 LR rounded and clipped to 8 bits.
  lr = np.clip(np.round(golden[f"{name}_x{scale}_down"] * np.float32(255)), 0, 255) / 255.0
  up = imresize.imresize(lr, scale)
  np.testing.assert_allclose(up, golden[f"{name}_x{scale}_up"], atol=1e-5, rtol=0)


def test_weight_rows_sum_to_one_and_constant_is_preserved():
  for n_in, n_out in [(96, 48), (9, 3), (7, 14), (5, 20), (50, 17)]:
    w = imresize.weight_matrix(n_in, n_out)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-12)
  img = np.full((33, 21, 3), 0.3)
  np.testing.assert_allclose(imresize.imresize(img, 0.5), 0.3, atol=1e-12)
  assert imresize.imresize(img, 0.5).shape == (17, 11, 3)


def test_tensorflow_path_matches_numpy():
  tf = pytest.importorskip("tensorflow")
  rng = np.random.default_rng(0)
  for scale in SCALES:
    hr = rng.integers(0, 256, (2, 12 * scale, 12 * scale, 3)).astype(np.float32)
    out = imresize.tf_downscale(tf.constant(hr), scale).numpy()
    ref = np.stack([imresize.imresize(h, 1.0 / scale) for h in hr.astype(np.float64)])
    np.testing.assert_allclose(out, ref, atol=2e-3)  # float32 vs float64 on [0, 255].


def test_bad_arguments():
  with pytest.raises(ValueError, match="exactly one"):
    imresize.imresize(np.zeros((4, 4)))
  with pytest.raises(ValueError, match="HxW"):
    imresize.imresize(np.zeros(4), 0.5)
