import functools
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from sr_jax.evaluation import eval_lib, eval_report

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Bicubic rows of the RDN paper's table (../shared/data/published_psnr.md).
PUBLISHED_BICUBIC = {"Set5": (33.66, 30.39, 28.42), "Set14": (30.24, 27.55, 26.00), "B100": (29.56, 27.21, 25.96)}


def test_bicubic_baseline_reproduces_the_published_rows(data_dir, tmp_path):
  upscalers = {s: eval_report.bicubic_upscale(s) for s in (2, 3, 4)}
  summary = eval_report.evaluate(upscalers, list(PUBLISHED_BICUBIC), data_dir, str(tmp_path), label="bicubic",
                                 heatmaps="none", sheets=False)
  for name, row in PUBLISHED_BICUBIC.items():
    for scale, published in zip((2, 3, 4), row):
      assert summary[name][f"x{scale}"]["psnr"] == pytest.approx(published, abs=0.03), (name, scale)
  assert summary["B100"]["x2"]["num_images"] == 100 and summary["Set14"]["x2"]["num_images"] == 14
  table = (tmp_path / "table.md").read_text()
  assert "| Set5 | x2 | 33.68" in table
  rows = (tmp_path / "per_image.csv").read_text().splitlines()
  assert len(rows) == 1 + 3 * (5 + 14 + 100)


def _run(*args):
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
  return subprocess.run([sys.executable, "-m", "sr_jax.cli.evaluate", *args], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=600)


def test_cli_writes_table_json_heatmaps_and_sheets(data_dir, tmp_path):
  out = _run("--baseline=bicubic", f"--data_dir={data_dir}", "--datasets=Set5", "--scales=3",
             f"--output_dir={tmp_path}")
  assert out.returncode == 0, out.stderr[-2000:]
  summary = json.loads((tmp_path / "summary.json").read_text())
  assert set(summary) == {"Set5"} and set(summary["Set5"]["x3"]) >= {"psnr", "ssim", "num_images"}
  assert "| Set5 | x3 | 30.4" in out.stdout
  heatmaps = sorted(os.listdir(tmp_path / "heatmaps" / "Set5_x3"))
  assert heatmaps == ["baby.png", "bird.png", "butterfly.png", "head.png", "woman.png"]
  heat = Image.open(tmp_path / "heatmaps" / "Set5_x3" / "bird.png")
  assert heat.size == (288 + 130, 288 + 40)  # The image at its own pixel size, and the colour bar beside it.
  assert Image.open(tmp_path / "sheets" / "Set5_x3.png").size[1] > 200


def test_bad_inputs_are_reported(tmp_path):
  (tmp_path / "empty").mkdir()
  with pytest.raises(FileNotFoundError, match="empty"):
    list(eval_report.iter_pairs(str(tmp_path / "empty"), 2, "", []))
  with pytest.raises(FileNotFoundError, match="not found"):
    list(eval_report.iter_pairs("Urban100", 2, str(tmp_path), []))
  folder = tmp_path / "mixed"
  folder.mkdir()
  rng = np.random.default_rng(0)
  Image.fromarray(rng.integers(0, 256, (40, 40, 3)).astype(np.uint8)).save(folder / "good.png")
  (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
  (folder / "empty.jpg").write_bytes(b"")
  summary = eval_report.evaluate({2: eval_report.bicubic_upscale(2)}, [str(folder)], "", str(tmp_path / "out"),
                                 label="bicubic", heatmaps="none", sheets=False)
  assert summary["mixed"]["x2"]["num_images"] == 1 and summary["mixed"]["x2"]["skipped"] == 2


def test_trained_run_evaluates_and_scale_mismatch_is_named(test_config, tmp_path, data_dir):
  from sr_jax.inference import upscaler
  from sr_jax.training import train
  from sr_jax.workdir import run_dir
  test_config.train.num_devices = 1
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(test_config, workdir)
  config, graphdef, params, step = run_dir.load_run(workdir, "latest")
  assert step == test_config.train.num_steps and config.model.scale == 2
  up = upscaler.Upscaler(graphdef, params, config.model)
  summary = eval_report.evaluate({2: up}, ["Set5"], data_dir, str(tmp_path / "ev"), label="RDN")
  assert 0 < summary["Set5"]["x2"]["psnr"] < 60 and summary["Set5"]["x2"]["bicubic_psnr"] == pytest.approx(
      33.68, abs=0.01)
  assert os.path.exists(tmp_path / "ev" / "sheets" / "Set5_x2.png")
  out = _run(f"--workdir={workdir}", f"--data_dir={data_dir}", "--datasets=Set5", "--scales=3")
  assert out.returncode != 0 and "scale mismatch" in out.stderr and "x2" in out.stderr
  out = _run(f"--workdir={workdir}", f"--data_dir={data_dir}", "--datasets=Set5", "--bf16", "--heatmaps=none",
             "--nosheets", f"--output_dir={tmp_path / 'bf16'}")
  assert out.returncode == 0 and "RDN bf16 (step 6)" in out.stdout, out.stderr[-2000:]
  bf16 = json.loads((tmp_path / "bf16" / "summary.json").read_text())["Set5"]["x2"]
  assert bf16["psnr"] == pytest.approx(summary["Set5"]["x2"]["psnr"], abs=0.05)
  out = _run("--baseline=bicubic", "--bf16", f"--data_dir={data_dir}")
  assert out.returncode != 0 and "--bf16 sets a model's compute precision" in out.stderr
  with pytest.raises(ValueError, match="no checkpoint at step 999"):
    run_dir.load_run(workdir, 999)


def test_cli_adds_lpips_dists_and_niqe_beside_bicubic(data_dir, tmp_path, lpips_weights):
  """issue #15's acceptance command (and DISTS): every set gets them in summary.json, with bicubic beside them."""
  out = _run("--baseline=bicubic", f"--data_dir={data_dir}", "--datasets=Set5,Set14", "--scales=4",
             "--metrics=psnr,ssim,lpips,dists,niqe", f"--output_dir={tmp_path}", "--heatmaps=none", "--nosheets")
  assert out.returncode == 0, out.stderr[-3000:]
  summary = json.loads((tmp_path / "summary.json").read_text())
  for name in ("Set5", "Set14"):
    r = summary[name]["x4"]
    assert 0.2 < r["lpips"] < 0.6 and 0.1 < r["dists"] < 0.5 and 5 < r["niqe"] < 12, r
    for m in ("lpips", "dists", "niqe"):
      assert r[m] == pytest.approx(r[f"bicubic_{m}"]), m
  assert "LPIPS" in out.stdout and "DISTS" in out.stdout and "NIQE" in out.stdout
  assert {"lpips", "dists"} <= set((tmp_path / "per_image.csv").read_text().splitlines()[0].split(","))
  bad = _run("--baseline=bicubic", "--metrics=psnr,fid")
  assert bad.returncode != 0 and "unknown fid" in bad.stderr


def test_error_maps_of_a_gray_image_score_what_the_headline_psnr_scores(data_dir):
  """Set14's bridge is gray: the SR is 3-channel, the headline PSNR compares its luma with the gray values. The
  contact sheet's patch PSNRs and the heatmap use that same comparison (they once compared MATLAB Y, 16-235,
  with raw gray values: -10 dB where the crops were identical to bicubic)."""
  from sr_jax import metrics
  from sr_jax.evaluation import error_maps
  from sr_jax.image import image_io, imresize
  hr = image_io.read_image(os.path.join(data_dir, "Set14", "bridge.png"), keep_gray=True)
  assert hr.ndim == 2
  pair = eval_lib.make_pair("bridge.png", hr, 2)
  sr = eval_lib.upscale_uint8(lambda lr: imresize.imresize(lr / 255.0, 2), pair)  # Bicubic, as 3 channels.
  assert sr.ndim == 3
  row = eval_lib.score_pair(pair, sr, 2)
  assert row["psnr"] == pytest.approx(row["bicubic_psnr"], abs=1e-9)
  scores = error_maps.patch_scores(pair, sr, 32, 2, min_std=0)
  for sr_db, bic_db, top, left in scores[:20]:
    crop = (slice(top, top + 32), slice(left, left + 32))
    assert sr_db == pytest.approx(metrics.psnr(sr[crop], hr[crop]), abs=1e-9)
    assert sr_db == pytest.approx(bic_db, abs=1e-9)  # SR is bicubic here: no gain, no loss.
  # The SR's luma is the bicubic gray image: its heatmap is the gray bicubic one, not a 16-235 offset of it.
  np.testing.assert_allclose(error_maps.abs_error(hr, sr), np.abs(hr - pair.bicubic.astype(float)), atol=1e-9)


def test_bicubic_extra_metrics_are_scored_once_per_image_across_evaluations(data_dir):
  """sr-interpolate scores six blends on the same sets: each bicubic image's LPIPS/DISTS/NIQE is computed once per
  process, and again for another image, scale or scorer."""
  from sr_jax.image import image_io
  calls = []

  def scorer(sr, hr, shave, tag="a"):
    calls.append((sr.shape, tag))
    return float(sr.mean()) + shave

  hr = image_io.read_image(os.path.join(data_dir, "Set5", "baby.png"))
  rows = []
  for k in range(3):  # Three evaluations: pairs made anew each time, as eval_report.evaluate does.
    pair = eval_lib.make_pair("baby.png", hr, 4)
    rows.append(eval_lib.score_pair(pair, pair.bicubic // 2 + k, 4, {"niqe": scorer}))
  assert len(calls) == 4  # Three SR images, one bicubic.
  assert rows[0]["bicubic_niqe"] == rows[2]["bicubic_niqe"] == pytest.approx(pair.bicubic.mean() + 4)
  assert rows[0]["niqe"] != rows[1]["niqe"]
  other = eval_lib.make_pair("baby.png", hr, 3)  # Another scale: another bicubic image.
  eval_lib.score_pair(other, other.bicubic, 3, {"niqe": scorer})
  tagged = functools.partial(scorer, tag="b")  # Another scorer (e.g. LPIPS with other weights).
  eval_lib.score_pair(eval_lib.make_pair("baby.png", hr, 4), pair.bicubic, 4, {"niqe": tagged})
  assert len(calls) == 8 and calls[-1][1] == "b"
