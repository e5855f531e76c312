"""sr-score: two folders scored with sr-evaluate's own numbers, names matched, every other file named."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from programs import run_module
from sr_jax.evaluation import eval_report, score_folders
from sr_jax.image import image_io
from sr_jax.metrics import psnr_ssim


def _bicubic_outputs(folder, data_dir, scale, suffix):
  """sr-evaluate's bicubic images of Set5 written as another method's outputs ('baby_x2.png', ...)."""
  folder.mkdir()
  for pair in eval_report.iter_pairs("Set5", scale, data_dir, []):
    image_io.save_image(str(folder / f"{os.path.splitext(pair.name)[0]}{suffix}.png"), pair.bicubic)


def test_sr_score_of_two_folders_equals_sr_evaluate_on_the_same_pairs(tmp_path, data_dir, lpips_weights):
  _bicubic_outputs(tmp_path / "sr", data_dir, 2, "_x2")
  metric_list = "psnr,ssim,lpips,niqe"
  evaluated = eval_report.evaluate({2: eval_report.bicubic_upscale(2)}, ["Set5"], data_dir, str(tmp_path / "ev"),
                                   label="bicubic", heatmaps="none", sheets=False,
                                   metric_names=tuple(metric_list.split(",")))["Set5"]["x2"]
  out = run_module("sr_jax.cli.score", f"--sr={tmp_path / 'sr'}", f"--hr={os.path.join(data_dir, 'Set5')}",
                   "--scale=2", f"--metrics={metric_list}", f"--output_dir={tmp_path / 'sc'}")
  assert out.returncode == 0, out.stderr[-3000:]
  scored = json.load(open(tmp_path / "sc" / "summary.json"))["Set5"]["x2"]
  for m in metric_list.split(","):
    assert scored[m] == evaluated[m], m  # The same functions on the same uint8 pairs: equal, not close.
  assert scored["num_images"] == 5 and scored["skipped"] == 0
  assert f"| Set5 | x2 | {evaluated['psnr']:.2f} / {evaluated['ssim']:.4f} |" in out.stdout
  assert (tmp_path / "sc" / "per_image.csv").is_file()


def test_names_pair_by_stem_or_suffix_and_what_does_not_pair_is_named(tmp_path):
  hr, sr = tmp_path / "hr", tmp_path / "sr"
  (hr / "sub").mkdir(parents=True)
  sr.mkdir()
  rng = np.random.default_rng(0)
  img = lambda: Image.fromarray(rng.integers(0, 256, (40, 44, 3)).astype(np.uint8))
  for name in ("baby.png", "bird_HR.png", "sub/head.png", "woman.png", "alone.png"):
    img().save(hr / name)
  (sr / "sub").mkdir()
  for name in ("baby_x4_SR.png", "bird.png", "sub/head-out.png", "woman_x4.png", "stray.png"):
    img().save(sr / name)
  Image.fromarray(np.zeros((30, 30, 3), np.uint8)).save(sr / "woman_x4.png")  # Not the reference's size.
  pairs, lonely_sr, lonely_hr = score_folders.match(str(sr), str(hr))
  assert [(n, os.path.relpath(s, sr)) for n, s, _ in pairs] == [
      ("baby.png", "baby_x4_SR.png"), ("bird_HR.png", "bird.png"), ("sub/head.png", "sub/head-out.png"),
      ("woman.png", "woman_x4.png")]
  assert lonely_sr == [str(sr / "stray.png")] and lonely_hr == [str(hr / "alone.png")]
  out = run_module("sr_jax.cli.score", f"--sr={sr}", f"--hr={hr}", f"--output_dir={tmp_path / 'o'}")
  assert out.returncode == 1 and "3 file(s) not scored" in out.stderr, out.stderr[-2000:]
  assert "woman_x4.png is 30x30 but its reference" in out.stderr and "stray.png: no reference" in out.stderr
  assert "alone.png: no SR image" in out.stderr and "Traceback" not in out.stderr
  assert json.load(open(tmp_path / "o" / "summary.json"))["hr"]["-"]["num_images"] == 3
  img().save(sr / "baby_x2.png")  # Two outputs for one reference: refused, naming both.
  with pytest.raises(score_folders.DataError, match="baby_x2.png and .*baby_x4_SR.png both pair"):
    score_folders.match(str(sr), str(hr))


def test_the_iqa_conventions_rgb_gray_and_no_shave():
  rng = np.random.default_rng(1)
  hr = rng.integers(0, 256, (48, 50, 3)).astype(np.uint8)
  sr = np.clip(hr.astype(int) + rng.integers(-9, 10, hr.shape), 0, 255).astype(np.uint8)
  rgb = score_folders.score_pair(sr, hr, score_folders.Convention(channels="rgb"), {})
  assert rgb["psnr"] == psnr_ssim.psnr(sr, hr, mode="rgb") != psnr_ssim.psnr(sr, hr)
  gray = score_folders.score_pair(sr, hr, score_folders.Convention(channels="gray", shave=3), {})
  weights = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])  # MATLAB rgb2gray, uint8 out.
  g = lambda x: np.clip(np.round(x @ weights), 0, 255).astype(np.uint8)
  assert gray["psnr"] == psnr_ssim.psnr(g(sr.astype(float)), g(hr.astype(float)), shave=3)
  with pytest.raises(ValueError, match="channels='lab'"):
    score_folders.Convention(channels="lab")
