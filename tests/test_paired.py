"""Paired LR/HR folders: matching by name, the errors that name files, training and evaluation on them."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from sr_jax.core.errors import DataError
from sr_jax.data import datasets, paired

RNG = np.random.default_rng(0)


def _write(path, shape, gray=False):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  arr = RNG.integers(0, 256, shape[:2] if gray else shape + (3,), dtype=np.uint8)
  Image.fromarray(arr).save(path)


@pytest.mark.parametrize("hr_name,lr_name", [("0001.png", "0001x4.png"), ("Canon_001_HR.png", "Canon_001_LR4.png"),
                                             ("img_1_SRF_4_HR.png", "img_1_SRF_4_LR.png"), ("a-hr.png", "a_lrx4.png")])
def test_common_naming_patterns_match(tmp_path, hr_name, lr_name):
  _write(str(tmp_path / "HR" / "sub" / hr_name), (64, 48))
  _write(str(tmp_path / "LR" / "sub" / lr_name), (16, 12))
  ((name, hr, lr),) = paired.match(str(tmp_path / "HR"), str(tmp_path / "LR"))
  assert name == os.path.join("sub", hr_name) and lr.endswith(lr_name)


def test_mismatches_are_errors_naming_the_files(tmp_path):
  hr_dir, lr_dir = tmp_path / "HR", tmp_path / "LR"
  _write(str(hr_dir / "a.png"), (64, 64))
  _write(str(lr_dir / "ax4.png"), (16, 16))
  _write(str(hr_dir / "b.png"), (64, 64))
  with pytest.raises(DataError, match=r"1 HR file\(s\) without a partner: .*b\.png"):
    paired.match(str(hr_dir), str(lr_dir))
  _write(str(lr_dir / "b_LR.png"), (20, 16))  # Not a quarter of 64x64.
  with pytest.raises(DataError, match=r"b\.png is 64x64 but its LR .*b_LR\.png is 16x20: not x4"):
    list(paired.iter_pairs(str(hr_dir), str(lr_dir), 4))
  _write(str(lr_dir / "b_LR.png"), (16, 16), gray=True)
  with pytest.raises(DataError, match=r"b_LR\.png is gray but its partner .*b\.png is colour"):
    list(paired.iter_pairs(str(hr_dir), str(lr_dir), 4))
  _write(str(lr_dir / "b_LR4.png"), (16, 16))
  with pytest.raises(DataError, match="both pair under the name 'b'"):
    paired.match(str(hr_dir), str(lr_dir))


def test_hr_one_pixel_larger_is_cropped_and_training_uses_the_given_lr(tmp_path):
  hr_dir, lr_dir = tmp_path / "HR", tmp_path / "LR"
  for i in range(3):
    _write(str(hr_dir / f"{i}.png"), (67, 66))  # modcrop(4) -> 64x64.
    _write(str(lr_dir / f"{i}x4.png"), (16, 16))
  spec = f"paired:{hr_dir},{lr_dir}"
  images = datasets.load_source(spec, lr_scale=4, min_size=16)
  assert images.name == "HR" and len(images) == 3 and images.get(0).shape == (64, 64, 3)
  np.testing.assert_array_equal(images.lr_images[1], np.asarray(Image.open(lr_dir / "1x4.png")))
  with pytest.raises(DataError, match="set config.data.lr_from_dataset=True"):
    datasets.load_source(spec)
  from sr_jax.configs import test as test_cfg
  from sr_jax.training import config_lib
  config = test_cfg.get_config()
  config.data.train = spec
  with pytest.raises(config_lib.ConfigError, match="data.lr_from_dataset"):
    config_lib.validate(config)


def test_evaluate_scores_the_given_lr_against_its_hr(tmp_path, data_dir):
  """Set5's HR with MATLAB-bicubic LR written as files: scoring them as a paired set gives Set5's bicubic row."""
  from sr_jax.image import image_io, imresize
  hr_dir, lr_dir = tmp_path / "HR", tmp_path / "LR"
  for path in image_io.list_images(os.path.join(data_dir, "Set5")):
    hr = imresize.modcrop(image_io.read_image(path), 4)
    name = os.path.splitext(os.path.basename(path))[0]
    os.makedirs(hr_dir, exist_ok=True)
    Image.fromarray(hr).save(hr_dir / f"{name}_HR.png")
    os.makedirs(lr_dir, exist_ok=True)
    Image.fromarray(imresize.downscale_uint8(hr, 4)).save(lr_dir / f"{name}_LR4.png")
  out = subprocess.run([sys.executable, "-m", "sr_jax.cli.evaluate", "--baseline=bicubic", "--scales=4",
                        f"--datasets=paired:{hr_dir},{lr_dir}", f"--output_dir={tmp_path}/o", "--sheets=false",
                        "--heatmaps=none"], capture_output=True, text=True)
  assert out.returncode == 0, out.stderr[-2000:]
  summary = json.loads((tmp_path / "o" / "summary.json").read_text())
  assert summary["HR"]["x4"]["num_images"] == 5
  assert summary["HR"]["x4"]["psnr"] == pytest.approx(28.42, abs=0.03)  # The published Set5 x4 bicubic row.
