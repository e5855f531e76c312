"""workdir/run_dir.py: the workdir rule for new workdirs (a user's folder is never written into or emptied),
readers beside a pruning trainer, unreadable checkpoints named and fallen back from."""

import logging
import os
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from faults import corrupt_checkpoint, tree, user_folder

from programs import ENV, error_lines, photos, REPO, run_module, run_python
from sr_jax.hub import importers
from sr_jax.training import train
from sr_jax.workdir import checkpointing, run_dir


@pytest.fixture(scope="module")
def workdir(finished_run):
  return finished_run


COMPACT = "realesr_animevideov3"


@pytest.fixture(scope="module")
def run(finished_run):
  return finished_run


def test_readers_never_fail_while_a_trainer_prunes(tmp_path):
  wd = tmp_path / "live"
  trainer = subprocess.Popen(
      [sys.executable, "-m", "sr_jax.cli.train", "--config=test", f"--workdir={wd}", "--config.train.num_steps=4000",
       "--config.checkpoint_every=2", "--config.keep_checkpoints=1", "--config.eval_every=4000",
       "--config.log_every=2", "--config.train.num_devices=1"], cwd=REPO, env=ENV, stdout=subprocess.DEVNULL,
      stderr=subprocess.PIPE, text=True)
  try:
    deadline = time.time() + 300
    while time.time() < deadline and not checkpointing.saved_steps(str(wd / "checkpoints")):
      time.sleep(0.1)
    steps = set()
    for _ in range(25):
      steps.add(run_dir.load_run(str(wd), "latest").step)  # Never raises, however the pruning falls.
    photos(tmp_path / "in", n=1)
    for i in range(3):
      res = run_module("sr_jax.cli.upscale", f"--workdir={wd}", "--step=latest", f"--input={tmp_path / 'in'}",
                       f"--output={tmp_path / f'out{i}'}")
      assert res.returncode == 0, res.stderr[-2000:]
      assert "Traceback" not in res.stderr and "Event loop is closed" not in res.stderr, res.stderr[-2000:]
    assert trainer.poll() is None, trainer.stderr.read()[-2000:]  # Still training: the race was real.
    assert len(steps) > 1, steps
  finally:
    trainer.terminate()
    trainer.wait(timeout=120)


@pytest.mark.parametrize("how", ["truncated", "random", "empty"])
def test_an_unreadable_latest_checkpoint_is_named_and_readers_fall_back(workdir, tmp_path, how, caplog):
  wd = corrupt_checkpoint(workdir, tmp_path / "wd", how)
  with caplog.at_level(logging.WARNING):
    assert run_dir.load_run(wd, "latest").step == 3
  assert "checkpoints/6 is unreadable: Error decoding manifest" in caplog.text
  assert "Using checkpoint 3 instead of unreadable 6" in caplog.text
  with pytest.raises(checkpointing.CheckpointUnreadableError, match="checkpoints/6 is unreadable: Error decoding"):
    run_dir.load_run(wd, "6")
  assert "mismatch" not in caplog.text


def test_unreadable_checkpoint_through_the_clis_and_resume(workdir, tmp_path):
  wd = corrupt_checkpoint(workdir, tmp_path / "wd", "truncated")
  photos(tmp_path / "in", n=1)
  res = run_module("sr_jax.cli.upscale", f"--workdir={wd}", "--step=latest", f"--input={tmp_path / 'in'}",
                   f"--output={tmp_path / 'out'}")
  assert res.returncode == 0 and "(checkpoint step 3)" in res.stdout, res.stderr[-2000:]
  assert "Using checkpoint 3 instead of unreadable 6" in res.stderr and "Traceback" not in res.stderr
  res = run_module("sr_jax.cli.evaluate", f"--workdir={wd}", "--step=6", "--datasets=x")
  errs = [l for l in res.stderr.splitlines() if l.strip()]
  assert res.returncode == 1 and len(errs) == 1 and "checkpoints/6 is unreadable" in errs[0], res.stderr[-2000:]
  # Training resumes from the newest readable step; the unreadable one is moved aside, never deleted.
  from sr_jax.configs import test as test_cfg
  config = test_cfg.get_config()
  config.train.update(num_devices=1, num_steps=9)
  train.train_and_evaluate(config, wd)
  assert checkpointing.saved_steps(os.path.join(wd, "checkpoints")) == [3, 6, 9]
  assert os.listdir(os.path.join(wd, "unreadable_checkpoints")) == ["6"]
  # The re-trained step 6 equals the original (resumed from 3 exactly as the first run went on from 3).
  a = jax.tree.leaves(run_dir.load_run(workdir, "6").params)
  b = jax.tree.leaves(run_dir.load_run(wd, "6").params)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_a_folder_holding_the_users_files_is_refused_by_every_command_that_writes_a_workdir(tmp_path, run, rrdb_npz):
  mine = tmp_path / "mine"
  before = user_folder(mine)
  for args in (["-m", "sr_jax.cli.import_weights", f"--weights={rrdb_npz}", f"--workdir={mine}"],
               ["-m", "sr_jax.cli.interpolate", f"--a={run}", f"--b={run}", "--alpha=0.5", f"--workdir={mine}"],
               ["-m", "sr_jax.cli.interpolate", f"--a={run}", f"--b={run}", "--alpha=0,1", f"--workdir={mine}"],
               ["-m", "sr_jax.cli.pretrained", "fetch", COMPACT, f"--workdir={mine}", f"--file={rrdb_npz}"]):
    res = run_python(*args)
    errs = error_lines(res.stderr)
    assert res.returncode == 1 and len(errs) == 1, (args, res.stderr[-2000:])
    assert f"--workdir {mine} already holds checkpoints (checkpoints, config.json)" in errs[0] or \
        f"--workdir {mine} holds checkpoints, config.json, which sr-interpolate did not write" in errs[0], errs
    assert tree(mine) == before and sorted(os.listdir(tmp_path)) == ["mine"]  # No hidden leftovers either.


def test_a_failed_or_interrupted_write_removes_only_what_it_made(tmp_path, rrdb_npz, monkeypatch):
  """Ctrl-C (or a full disk) in the middle of writing: the user's empty folder stays, a new path stays absent,
  and the hidden folder the write was building is gone; the same command then works."""
  empty = tmp_path / "empty"
  empty.mkdir()
  (tmp_path / "neighbour.txt").write_text("the user's")
  real_save = checkpointing.Checkpointer.save

  def interrupted(self, *a, **k):
    raise KeyboardInterrupt

  monkeypatch.setattr(checkpointing.Checkpointer, "save", interrupted)
  for target in (empty, tmp_path / "new"):
    with pytest.raises(KeyboardInterrupt):
      importers.import_to_workdir(rrdb_npz, str(target))
  assert sorted(os.listdir(tmp_path)) == ["empty", "neighbour.txt"] and os.listdir(empty) == []
  monkeypatch.setattr(checkpointing.Checkpointer, "save", real_save)
  importers.import_to_workdir(rrdb_npz, str(empty))
  assert run_dir.load_run(str(empty), "latest").step == 0 and run_dir.read_source(str(empty))["format"]
  assert sorted(os.listdir(tmp_path)) == ["empty", "neighbour.txt"]


def test_the_hidden_folder_of_a_killed_write_is_removed_by_the_next_write_and_nothing_else(tmp_path, rrdb_npz):
  dead = subprocess.Popen(["true"])
  dead.wait()
  stale = tmp_path / f".imp.tmp{dead.pid}-0123abcd"
  (stale / "checkpoints").mkdir(parents=True)
  alive = tmp_path / f".imp.tmp{os.getpid()}-0123abcd"  # A live process's: not touched.
  alive.mkdir()
  other = tmp_path / f".other.tmp{dead.pid}-0123abcd"  # Another destination's: not this write's business.
  other.mkdir()
  importers.import_to_workdir(rrdb_npz, str(tmp_path / "imp"))
  assert sorted(os.listdir(tmp_path)) == sorted(["imp", alive.name, other.name])
