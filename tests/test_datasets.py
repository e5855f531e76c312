"""data/datasets.py: sources read with their sub-folders, a folder without a usable image and patches below 8
pixels refused before anything compiles."""

import os

import jax
import pytest

from programs import photos
from sr_jax.data import datasets
from sr_jax.training import train


def test_folder_without_usable_images_fails_before_compiling(test_config, tmp_path, monkeypatch):
  (tmp_path / "data").mkdir()
  (tmp_path / "data" / "a.png").write_bytes(b"broken")
  test_config.data.train = str(tmp_path / "data")
  compiled = []
  monkeypatch.setattr(jax, "jit", lambda *a, **k: compiled.append(1))
  with pytest.raises(ValueError, match=r"no usable images .*a.png"):
    train.train_and_evaluate(test_config, str(tmp_path / "run"))
  assert not compiled


def test_images_in_sub_folders_are_read(tmp_path):
  photos(tmp_path / "data" / "a", n=1)
  photos(tmp_path / "data" / "b" / "c", n=2)
  images = datasets.load_source(str(tmp_path / "data"))
  assert images.names == [os.path.join("a", "img0.png"), os.path.join("b", "c", "img0.png"),
                          os.path.join("b", "c", "img1.png")]


def test_training_patches_below_8_pixels_are_refused(test_config):
  from sr_jax.training import config_lib
  test_config.data.patch_size = 1
  with pytest.raises(config_lib.ConfigError, match="config.data.patch_size=1 is invalid; accepted: an integer >= 8"):
    config_lib.validate(test_config)
