"""DIV2K through tensorflow-datasets, on mocked data (nothing is downloaded)."""

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")
tf = pytest.importorskip("tensorflow")

from sr_jax.data import datasets, div2k, input_pipeline
from sr_jax.evaluation import eval_report
from sr_jax.image import imresize


def _aligned_div2k(scale, sizes=((64, 80), (72, 48), (96, 96))):
  """A mocked as_dataset yielding DIV2K-like examples whose LR is the MATLAB-bicubic HR."""
  rng = np.random.default_rng(0)
  hrs = [rng.integers(0, 256, (h, w, 3)).astype(np.uint8) for h, w in sizes]
  lrs = [imresize.downscale_uint8(hr, scale) for hr in hrs]

  def as_dataset(self, *args, **kwargs):
    del self, args, kwargs
    return tf.data.Dataset.from_generator(
        lambda: ({"hr": hr, "lr": lr} for hr, lr in zip(hrs, lrs)),
        output_signature={"hr": tf.TensorSpec((None, None, 3), tf.uint8),
                          "lr": tf.TensorSpec((None, None, 3), tf.uint8)})
  return hrs, as_dataset


def test_tfds_source_yields_aligned_training_patches():
  hrs, as_dataset = _aligned_div2k(2)
  with tfds.testing.mock_data(as_dataset_fn=as_dataset):
    images = datasets.load_source("tfds:div2k/bicubic_x2", min_size=32)
  assert len(images) == 3 and images.names == ["0001", "0002", "0003"]  # DIV2K file numbers
  np.testing.assert_array_equal(images.get(1), hrs[1])
  batch = next(input_pipeline.train_dataset(images, patch_size=16, scale=2, global_batch=4, seed=0)
               .as_numpy_iterator())
  for hr, lr in zip(batch["hr"], batch["lr"]):
    assert np.abs(imresize.to_uint8(imresize.imresize(hr / 255.0, 0.5)).astype(int) - lr).max() <= 1


def test_div2k_validation_pairs_use_the_shipped_lr():
  hrs, as_dataset = _aligned_div2k(3)
  with tfds.testing.mock_data(as_dataset_fn=as_dataset):
    pairs = list(eval_report.iter_pairs("div2k", 3, "", []))
  assert [p.name for p in pairs] == ["0801", "0802", "0803"]
  assert pairs[0].lr.shape == (64 // 3, 80 // 3, 3) and pairs[0].hr.shape == (63, 78, 3)
  assert 0 < pairs[0].bicubic_psnr < 60


def test_missing_data_explains_the_offline_set_up(monkeypatch, tmp_path):
  def offline(*args, **kwargs):
    raise ConnectionError("no route to data.vision.ee.ethz.ch")
  monkeypatch.setattr(tfds, "load", offline)
  with pytest.raises(RuntimeError, match="DIV2K_train_LR_bicubic_XS.zip") as err:
    datasets.load_source("tfds:div2k/bicubic_x2", tfds_manual_dir=str(tmp_path))
  assert str(tmp_path) in str(err.value) and "DIV2K_train_HR.zip" in str(err.value)


def test_training_on_the_datasets_own_lr_images():
  """data.lr_from_dataset: LR patches are crops of the shipped LR images, aligned with the HR crops."""
  rng = np.random.default_rng(1)
  hrs = [rng.integers(0, 256, (h, w, 3)).astype(np.uint8) for h, w in ((61, 80), (72, 50))]
  # A degradation that is not our bicubic (like div2k/unknown_x2): 2x2 box average, rounded.
  lrs = [np.round(hr[:h // 2 * 2, :w // 2 * 2].reshape(h // 2, 2, w // 2, 2, 3).mean((1, 3))).astype(np.uint8)
         for hr, (h, w) in zip(hrs, ((61, 80), (72, 50)))]

  def as_dataset(self, *args, **kwargs):
    return tf.data.Dataset.from_generator(
        lambda: ({"hr": hr, "lr": lr} for hr, lr in zip(hrs, lrs)),
        output_signature={"hr": tf.TensorSpec((None, None, 3), tf.uint8),
                          "lr": tf.TensorSpec((None, None, 3), tf.uint8)})

  with tfds.testing.mock_data(as_dataset_fn=as_dataset):
    images = datasets.load_source("tfds:div2k/unknown_x2", min_size=16, lr_scale=2)
  assert images.shapes.tolist() == [[60, 80], [72, 50]]
  batch = next(input_pipeline.train_dataset(images, patch_size=8, scale=2, global_batch=6, seed=0,
                                            augment=False).as_numpy_iterator())
  for hr, lr in zip(batch["hr"], batch["lr"]):
    box = np.round(hr.reshape(8, 2, 8, 2, 3).mean((1, 3))).astype(np.uint8)
    np.testing.assert_array_equal(lr, box)  # The shipped LR of exactly this HR crop.
  with pytest.raises(ValueError, match=r"needs sources that ship LR images \(tfds, paired:\)"):
    datasets.load_source("skimage:astronaut", lr_scale=2)


def test_offline_is_said_at_once_instead_of_minutes_of_download_retries(monkeypatch, tmp_path):
  asked = []
  monkeypatch.setattr(div2k, "_resolves", lambda host: asked.append(host) or False)  # No network.
  with pytest.raises(div2k.DatasetUnavailableError, match=r"(?s)cannot be resolved: this machine looks offline.*"
                                                         r"DIV2K_train_HR.zip"):
    list(div2k.iter_examples("div2k/bicubic_x2:validation", data_dir=str(tmp_path)))
  assert asked == [div2k.HOST]
  manual = tmp_path / "manual"
  manual.mkdir()
  (manual / "DIV2K_valid_HR.zip").write_bytes(b"")  # Zips given: tfds reads them, no network needed.
  div2k._check_offline(tfds, "div2k/bicubic_x2", str(tmp_path), str(manual))
  assert asked == [div2k.HOST]
