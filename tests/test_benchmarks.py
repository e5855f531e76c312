import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_benchmark_smoke_mode_reports_every_field():
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3", XLA_FLAGS="")
  out = subprocess.run([sys.executable, "-m", "experiments.benchmarks.bench", "--smoke"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  rows = {r["benchmark"]: r for r in map(json.loads, (l for l in out.stdout.splitlines() if l.startswith("{")))}
  assert set(rows) == {"train_step", "inference_full", "inference_tiled", "inference_folder_of_frames",
                       "input_pipeline"}
  train = rows["train_step"]
  for key in ("step_s_median", "compile_plus_first_step_s", "patches_per_s", "gflops_per_s", "mfu",
              "peak_host_rss_mb", "device", "model"):
    assert key in train
  assert train["loss_finite"] and train["patches_per_s"] > 0
  assert rows["inference_tiled"]["output_mpix_per_s"] > 0 and rows["input_pipeline"]["patches_per_s"] > 0
  assert rows["inference_folder_of_frames"]["batched_s"] > 0


def test_benchmark_times_fused_steps_per_optimizer_step():
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3", XLA_FLAGS="")
  out = subprocess.run([sys.executable, "-m", "experiments.benchmarks.bench", "--smoke", "--what=train",
                        "--config.train.steps_per_dispatch=4"], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  row = json.loads(next(l for l in out.stdout.splitlines() if l.startswith("{")))
  assert row["steps_per_dispatch"] == 4 and row["loss_finite"] and row["patches_per_s"] > 0
