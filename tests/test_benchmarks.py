import importlib.util
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_benchmark_smoke_mode_reports_every_field():
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3", XLA_FLAGS="")
  out = subprocess.run([sys.executable, "-m", "experiments.benchmarks.bench", "--smoke"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  rows = {r["benchmark"]: r for r in map(json.loads, (l for l in out.stdout.splitlines() if l.startswith("{")))}
  assert set(rows) == {"train_step", "train_step_host_cost", "inference_full", "inference_tiled",
                       "inference_folder_of_frames", "input_pipeline"}
  train = rows["train_step"]
  for key in ("step_s_median", "compile_plus_first_step_s", "patches_per_s", "gflops_per_s", "mfu",
              "peak_host_rss_mb", "device", "model"):
    assert key in train
  assert train["loss_finite"] and train["patches_per_s"] > 0 and train["state_layout"] == "leaves"  # The CPU's.
  assert rows["inference_tiled"]["output_mpix_per_s"] > 0 and rows["input_pipeline"]["patches_per_s"] > 0
  assert rows["inference_folder_of_frames"]["batched_s"] > 0
  host = rows["train_step_host_cost"]  # Both trainer layouts carry the state to the same values.
  assert host["max_abs_difference_from_the_train_state_boundary"] == {"leaves": 0, "packed": 0}
  assert host["train_state_boundary_ms"] > 0 and host["state_arrays"] > 50


def test_benchmark_times_fused_steps_per_optimizer_step():
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3", XLA_FLAGS="")
  out = subprocess.run([sys.executable, "-m", "experiments.benchmarks.bench", "--smoke", "--what=train",
                        "--config.train.steps_per_dispatch=4"], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  row = json.loads(next(l for l in out.stdout.splitlines() if l.startswith("{")))
  assert row["steps_per_dispatch"] == 4 and row["loss_finite"] and row["patches_per_s"] > 0


def test_side_by_side_alternates_the_frameworks_and_reports_the_spread(monkeypatch):
  """bench --with_torch: rounds of JAX then PyTorch, PyTorch then JAX, ...; each ratio with its min and max."""
  from absl import flags
  from experiments.benchmarks import bench
  from sr_jax import configs
  flags.FLAGS(["bench", f"--config={configs.path('test')}", "--what=train,infer", "--rounds=4", "--steps=2",
               "--batch=2", "--patch=8", "--infer_size=12"])
  order, torch_seconds = [], iter([0.5, 0.5, 1.0, 1.0, 0.5, 0.5, 2.0, 2.0] * 2)

  class FakeTorch:  # The torch_rdn --serve protocol: 'what N' in, {"seconds": [N values]} out.
    stdin = stdout = property(lambda self: self)

    def write(self, line):
      what, n = line.split()[:2] if line.strip() != "quit" else (line.strip(), 0)
      self.n = int(n)
      order.append(f"torch {what}") if what != "quit" else None

    def readline(self):
      return json.dumps({"seconds": [next(torch_seconds) for _ in range(self.n)]})

    def flush(self):
      pass

    close = flush

    def wait(self, timeout=None):
      return 0

  monkeypatch.setattr(bench, "_torch_server", lambda config, what, mode: FakeTorch())
  calls = {"n": 0}

  def jax_once(fn):
    calls["n"] += 1
    if calls["n"] > 2:  # After the two warm-up calls.
      order.append("jax")
    return 0.25
  monkeypatch.setattr(bench, "_time_once", jax_once)
  rows = bench.side_by_side(flags.FLAGS.config)
  jax_first = ["jax", "jax", "torch train", "jax", "jax", "torch infer"]
  torch_first = ["torch train", "jax", "jax", "torch infer", "jax", "jax"]
  assert order == jax_first + torch_first + jax_first + torch_first
  train, infer = rows
  assert train["benchmark"] == "side_by_side_train_step" and train["jax_s_per_round"] == [0.25] * 4
  assert train["torch_mode"] == "eager_fp32" and train["architecture"] == "rdn" and train["jax_dtype"] == "float32"
  assert train["torch_s_per_round"] == [0.5, 0.5, 0.5, 0.5]
  assert infer["torch_s_per_round"] == [1.0, 2.0, 1.0, 2.0]
  assert infer["torch_time_over_jax_time"] == {"median": 6.0, "min": 4.0, "max": 8.0}


def test_the_pytorch_side_builds_each_architecture_at_the_size_sr_jax_builds_and_runs_its_fast_mode():
  """The reference modules (spandrel's, the RDN authors', BasicSR's EDSR) have exactly sr_jax's trained parameter
  count for the same config.model; the compiled bf16 channels_last mode trains. Needs requirements-bench.txt."""
  torch = pytest.importorskip("torch")
  if importlib.util.find_spec("spandrel") is None:  # Not imported: its __init__ needs torchvision.
    pytest.skip("spandrel is not installed (requirements-bench.txt)")
  from experiments.benchmarks import bench, torch_models
  from sr_jax.models import registry
  cases = {**bench.SMOKE_ARCHITECTURES,  # bench --smoke --archs's sizes, and HAT (not in bench: 16-pixel windows).
           "hat": dict(num_blocks=1, num_layers=2, features=30, num_heads=2, window_size=16, squeeze=30)}
  for name, fields in cases.items():
    m = registry.default_config()
    m.update(name=name, **fields)
    module = torch_models.build(torch, m)
    assert torch_models.param_count(module) == registry.count_params(m), name
    assert tuple(module(torch.rand(1, 3, 16, 16)).shape) == (1, 3, 16 * m.scale, 16 * m.scale), name
  m = registry.default_config()
  m.update(name="srvgg", **cases["srvgg"])
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
  out = subprocess.run([sys.executable, "-m", "experiments.benchmarks.torch_rdn", "--mode=compiled_bf16_cl",
                        f"--model_json={m.to_json()}", "--batch=2", "--patch=8", "--infer_size=16", "--steps=2"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
  assert out.returncode == 0, out.stderr[-3000:]
  rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
  assert [r["benchmark"] for r in rows] == ["train_step", "inference_full"]
  assert rows[0]["mode"] == "compiled_bf16_cl" and rows[0]["model"]["name"] == "srvgg" and rows[0]["step_s_median"] > 0
