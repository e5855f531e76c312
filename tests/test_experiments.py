import os

import pytest

from experiments import launch, report, sweep_lib
from sr_jax import configs

SWEEP = '''
from experiments.sweep_lib import product, zip_
BASE_CONFIG = "test"

def sweep(add):
  for o in product({"seed": [0, 1]}, zip_({"model.growth": [4, 8], "model.features": [6, 10]})):
    add(**o)
'''

TINY = '''
BASE_CONFIG = "test"

def sweep(add):
  add(seed=0)
  add(seed=1, **{"train.num_steps": 4})
  add(**{"model.scale": 5})  # Impossible: this member fails, the others go on.
'''


def test_sweep_file_expands_to_the_expected_override_sets(tmp_path):
  path = tmp_path / "s.py"
  path.write_text(SWEEP)
  base, members = sweep_lib.load(str(path))
  assert base == "test"
  assert members == [
      {"seed": 0, "model.growth": 4, "model.features": 6}, {"seed": 0, "model.growth": 8, "model.features": 10},
      {"seed": 1, "model.growth": 4, "model.features": 6}, {"seed": 1, "model.growth": 8, "model.features": 10}]
  assert sweep_lib.member_name(members[1]) == "seed=0,growth=8,features=10"
  path.write_text(SWEEP.replace('"seed": [0, 1]', '"seed": [0, 0]'))
  with pytest.raises(ValueError, match="same member twice"):
    sweep_lib.load(str(path))
  with pytest.raises(ValueError, match="one length"):
    list(sweep_lib.zip_({"a": [1, 2], "b": [1]}))


def test_shipped_sweeps_load():
  for name, count in (("loss_study", 4), ("model_size", 8), ("patch_size", 4)):
    base, members = sweep_lib.load(f"experiments/{name}.py")
    assert os.path.exists(configs.path(base)) and len(members) == count


def test_launcher_runs_skips_and_reports_failures_then_report_builds(tmp_path, data_dir):
  sweep = tmp_path / "tiny.py"
  sweep.write_text(TINY)
  root = str(tmp_path / "runs")
  results = {r["name"]: r for r in launch.launch(str(sweep), root, parallel=2)}
  assert results["seed=0"]["status"] == "done" and results["seed=1,num_steps=4"]["status"] == "done"
  assert results["scale=5"]["status"] == "failed" and "model.scale=5" in results["scale=5"]["error"]
  again = {r["name"]: r for r in launch.launch(str(sweep), root, parallel=1)}
  assert again["seed=0"]["status"] == "skipped (done)" and again["scale=5"]["status"] == "failed"

  out = report.build(root, data_dir=data_dir)
  md = open(os.path.join(out, "report.md")).read()
  assert "| seed=0 | done | 7,971 |" in md and "skimage x2" in md
  assert "| seed=1,num_steps=4 | done |" in md and "scale=5" not in md.split("![")[0].split("\n", 2)[2]
  for png in ("psnr_vs_step.png", "psnr_vs_time.png", "grid.png"):
    assert os.path.getsize(os.path.join(out, png)) > 1000
  rows = open(os.path.join(out, "report.csv")).read().splitlines()
  assert len(rows) == 3  # Header + the two runs that trained (the failed one never wrote config.json).
