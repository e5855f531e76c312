"""training/train_workdir.py: the trainer's side of a workdir: what training may start in, what a run that never
trained leaves, recipe changes on resume, a full disk during training."""

import json
import os

import pytest
from faults import fill, tmpfs, tree, user_folder

from programs import run_module
from sr_jax.hub import importers
from sr_jax.training import config_lib, train, train_workdir
from sr_jax.workdir import checkpointing, run_dir


@pytest.fixture(scope="module")
def run(finished_run):
  return finished_run


def test_a_run_that_never_trained_leaves_no_config_and_its_workdir_stays_usable(test_config, tmp_path):
  (tmp_path / "empty").mkdir()
  test_config.data.train = str(tmp_path / "empty")
  with pytest.raises(FileNotFoundError, match="is empty"):
    train.train_and_evaluate(test_config, str(tmp_path / "run"))
  assert not (tmp_path / "run" / "config.json").exists()
  test_config.data.train = "skimage:astronaut"
  test_config.model.scale = 3  # Another model in the same workdir: nothing was trained, so it is new.
  test_config.train.update(num_devices=1, num_steps=3)
  assert int(train.train_and_evaluate(test_config, str(tmp_path / "run")).step) == 3
  assert json.loads((tmp_path / "run" / "config.json").read_text())["model"]["scale"] == 3


def test_training_on_a_full_disk_says_so_once_and_resumes_after_space_is_freed(tmp_path):
  args = ["--config=test", "--config.train.num_steps=12", "--config.checkpoint_every=2", "--config.log_every=2",
          "--config.keep_checkpoints=2", "--config.train.num_devices=1"]
  with tmpfs(tmp_path / "disk", size="4m") as disk:
    fill(disk, leave_kb=500)  # Room for the first checkpoint (~300 KB), not the second.
    res = run_module("sr_jax.cli.train", f"--workdir={disk / 'w'}", *args)
    lines = [l for l in res.stderr.splitlines() if l.strip() and not l.startswith(("I", "W"))]
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr[-3000:]
    # Whichever writer meets the full disk first says so (a checkpoint save, or the summaries/validation log;
    # which one depends on timing): one line naming the intact checkpoint either way.
    said = ("is full; training stopped. Checkpoints intact: [2]",
            "the disk is full. Earlier checkpoints are intact ([2])")
    assert len(lines) == 1 and any(s in lines[0] for s in said), res.stderr[-3000:]
    os.remove(disk / ".filler")
    res = run_module("sr_jax.cli.train", f"--workdir={disk / 'w'}", *args)
    assert res.returncode == 0 and "Resuming" in res.stderr, res.stderr[-3000:]
    assert checkpointing.saved_steps(str(disk / "w" / "checkpoints"))[-1] == 12


def test_resuming_with_another_recipe_is_refused_unless_allowed_and_then_recorded(tmp_path, run):
  import shutil
  from sr_jax.configs import test as test_cfg
  wd = str(tmp_path / "run")
  shutil.copytree(run, wd)
  original = json.load(open(os.path.join(wd, "config.json")))
  config = test_cfg.get_config()
  config.train.update(num_devices=1, num_steps=8, batch_size=4)
  config.loss.update(l1=0.0, mse=1.0)
  with pytest.raises(config_lib.ConfigError) as e:
    train.train_and_evaluate(config, wd)
  msg = str(e.value)
  assert "another recipe than this config (loss.l1 1.0 -> 0.0; loss.mse 0.0 -> 1.0; train.batch_size 8 -> 4)" in msg
  assert "--allow_config_change" in msg and json.load(open(os.path.join(wd, "config.json"))) == original
  assert checkpointing.saved_steps(os.path.join(wd, "checkpoints")) == [3, 6]
  longer = test_cfg.get_config()  # How the run is run (steps, logging) may change freely.
  longer.train.update(num_devices=1, num_steps=8)
  longer.log_every = 4
  assert train_workdir.check_config(longer, wd) == {}
  train.train_and_evaluate(config, wd, allow_config_change=True)
  history = json.load(open(os.path.join(wd, train_workdir.HISTORY_FILE)))
  assert history[0]["step"] == 6 and history[0]["changes"] == {
      "loss.l1": [1.0, 0.0], "loss.mse": [0.0, 1.0], "train.batch_size": [8, 4]}
  assert run_dir.load_config(wd).loss.mse == 1.0


def test_training_refuses_a_folder_of_the_users_and_resumes_its_own_runs(tmp_path, run):
  from sr_jax.configs import test as test_cfg
  mine = tmp_path / "mine"
  before = user_folder(mine)
  config = test_cfg.get_config()
  config.train.update(num_devices=1, num_steps=2)
  with pytest.raises(run_dir.WorkdirNotNewError, match=rf"--workdir {mine} holds checkpoints, config.json and is "
                                                        "not an sr_jax run"):
    train.train_and_evaluate(config, str(mine))
  assert tree(mine) == before
  train_workdir.check_training_workdir(run)  # An earlier run, and a launcher's member before its first step:
  member = tmp_path / "member"
  member.mkdir()
  (member / "launch.json").write_text("{}")
  (member / "train.log").write_text("")
  train_workdir.check_training_workdir(str(member))


def test_training_in_a_workdir_of_imported_weights_is_refused_with_the_way_to_train_from_them(tmp_path, rrdb_npz):
  from sr_jax.configs import test as test_cfg
  wd = str(tmp_path / "imported")
  importers.import_to_workdir(rrdb_npz, wd)
  config = test_cfg.get_config()
  config.train.update(num_devices=1, num_steps=2)
  with pytest.raises(run_dir.WorkdirNotNewError, match=rf"holds imported or interpolated weights .* "
                                                        rf"--config.train.init_from={wd}"):
    train.train_and_evaluate(config, wd)
  tree = checkpointing.Checkpointer(wd, read_only=True, async_save=False).manager.item_metadata(0)["state"]
  assert sorted(tree) == ["first_bad_step", "params", "step"]  # The parameters only: no optimiser state.
