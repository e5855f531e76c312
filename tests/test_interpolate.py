"""Network interpolation: alpha 1 and 0 give the two runs exactly; refusals; the grid mode evaluates each blend."""

import os
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

from programs import ENV, error_lines, REPO, run_python
from sr_jax.inference import interpolation
from sr_jax.training import train
from sr_jax.workdir import run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """Two tiny runs of one architecture (seeds 0 and 1, the second with an EMA), one of another size, one at x3."""
  from sr_jax.configs import test as test_cfg
  root = tmp_path_factory.mktemp("interp")
  out = {}
  for name, update in (("a", {}), ("b", {"seed": 1, "train.ema_decay": 0.5}), ("wide", {"model.features": 12}),
                       ("x3", {"model.scale": 3})):
    config = test_cfg.get_config()
    config.train.update(num_devices=1, num_steps=3)
    config.update_from_flattened_dict(update)
    train.train_and_evaluate(config, str(root / name))
    out[name] = str(root / name)
  out["root"] = root
  return out


def _leaves(workdir, step="latest"):
  return [np.asarray(x) for x in jax.tree.leaves(run_dir.load_run(workdir, step).params)]


def test_alpha_one_and_zero_are_the_runs_and_half_is_the_mean(runs):
  pair = interpolation.load_pair(runs["a"], runs["b"])
  for alpha in (1.0, 0.0, 0.5):
    wd = str(runs["root"] / f"blend_{alpha}")
    interpolation.write(wd, runs["a"], runs["b"], pair, alpha)
    got = _leaves(wd)
    a, b = _leaves(runs["a"], "best"), _leaves(runs["b"], "best")  # b: its EMA weights, as evaluate reads them.
    for g, x, y in zip(got, a, b):
      want = x if alpha == 1 else y if alpha == 0 else (0.5 * x.astype(np.float64) + 0.5 * y).astype(np.float32)
      np.testing.assert_array_equal(g, want)
  cfg = run_dir.load_config(str(runs["root"] / "blend_0.5"))
  assert cfg.train.ema_decay == 0 and cfg.model.features == 8
  assert not interpolation.write(str(runs["root"] / "blend_0.5"), runs["a"], runs["b"], pair, 0.5)  # Kept as is.
  with pytest.raises(FileExistsError, match="already holds checkpoints"):
    interpolation.write(str(runs["root"] / "blend_0.5"), runs["a"], runs["b"], pair, 0.25)


def test_different_architectures_sizes_scales_and_bad_alpha_are_refused(runs):
  with pytest.raises(interpolation.InterpolationError, match=r"different sizes: model.features 8 vs 12"):
    interpolation.load_pair(runs["a"], runs["wide"])
  with pytest.raises(interpolation.InterpolationError, match="x2 model and .* x3 one: the scales must match"):
    interpolation.load_pair(runs["a"], runs["x3"])
  for alpha in (-0.1, 1.5, float("nan")):
    with pytest.raises(interpolation.InterpolationError, match=r"give values in \[0, 1\]"):
      interpolation.check_alpha(alpha)


def test_grid_mode_writes_one_evaluated_workdir_per_alpha(runs, data_dir):
  root = runs["root"] / "grid"
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3", SR_DATA_DIR=os.path.abspath(data_dir),
             PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]))
  out = subprocess.run([sys.executable, "-m", "sr_jax.cli.interpolate", f"--a={runs['a']}", f"--b={runs['b']}",
                        "--alpha=0,0.5,1", f"--workdir={root}", "--evaluate=Set5", "--metrics=psnr,ssim"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  assert sorted(os.listdir(root)) == ["alpha_0.00", "alpha_0.50", "alpha_1.00", "interpolation.md"]
  table = (root / "interpolation.md").read_text()
  assert "| alpha | Set5 x2 |" in table and table.count("\n| 0.") == 2 and "\n| 1.00 |" in table
  for a in ("0.00", "0.50", "1.00"):
    assert (root / f"alpha_{a}" / "eval" / "summary.json").exists()
  from experiments import report
  runs_ = report.collect(str(runs["root"]))
  blends = [r for r in runs_ if r["alpha"] is not None]
  assert [r["alpha"] for r in blends] == [0.0, 0.5, 1.0] and {r["recipe"] for r in blends} == {"grid (interpolation)"}
  assert runs_[-1] is blends[-1]  # After the runs.
  per_run, per_recipe = report.markdown(runs_).split("### Per recipe")
  assert "| grid, alpha 0.50 |  |  |" in per_run  # A blend trained no steps: blank, not 0.
  assert "grid (interpolation)" not in per_recipe


@pytest.fixture(scope="module")
def run(finished_run):
  return finished_run


def test_alpha_folder_names_are_exact_and_minus_zero_is_zero():
  assert [interpolation.blend_dir(a) for a in (0.5, 0.501, 0.502, -0.0, 1.0, 1e-5)] == [
      "alpha_0.50", "alpha_0.501", "alpha_0.502", "alpha_0.00", "alpha_1.00", "alpha_0.00001"]
  for name in ("alpha_0.501", "alpha_0.00", "alpha_0.00001"):
    assert interpolation.blend_alpha(name) == float(name.removeprefix("alpha_"))
  assert interpolation.blend_alpha("alpha_-0.00") is None


def test_interpolate_interrupted_says_so_in_one_line_and_the_same_command_resumes(tmp_path, run, data_dir):
  grid = tmp_path / "grid"
  args = ["-m", "sr_jax.cli.interpolate", f"--a={run}", f"--b={run}", "--alpha=0,0.501,-0", f"--workdir={grid}"]
  res = run_python(*args)
  assert res.returncode == 1 and "repeats a value" in res.stderr  # -0 is 0.
  args[-2] = "--alpha=0,0.501,0.502"
  args += ["--evaluate=Set5", "--metrics=psnr", f"--data_dir={data_dir}"]
  proc = subprocess.Popen([sys.executable, *args], cwd=REPO, env=ENV, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
  first = proc.stdout.readline()
  assert first.startswith("alpha 0.00:"), first + proc.stderr.read()[-2000:]
  proc.send_signal(signal.SIGINT)
  out, err = proc.communicate(timeout=300)
  errs = error_lines(err)
  assert proc.returncode == 130 and len(errs) == 1, err[-3000:]
  assert errs[0].startswith("interpolate.py: interrupted (Ctrl-C); the blends and evaluations finished so far "
                            "are kept"), errs
  assert "Traceback" not in err
  res = run_python(*args)
  assert res.returncode == 0, res.stderr[-3000:]
  assert "alpha 0.00: 0 x" in res.stdout and "(written by an earlier run of this command; kept)" in res.stdout
  assert sorted(os.listdir(grid)) == ["alpha_0.00", "alpha_0.501", "alpha_0.502", "interpolation.md"]
  assert "| 0.501 |" in (grid / "interpolation.md").read_text()
  res = run_python(*args)  # Everything done: kept, scored, nothing redone.
  assert res.returncode == 0 and res.stdout.count("scored by an earlier run of this command") == 3, res.stdout
