"""workdir/checkpointing.py: the trainer's checkpoint manager: saves that are cut short are never restored, a
checkpoint pruned while read is retried or named, a full disk is one clear error, old checkpoints load, a garbage
metrics file keeps its checkpoint usable."""

import errno
import logging
import os
import shutil

import jax
import numpy as np
import pytest
from faults import corrupt_checkpoint

from sr_jax.training import train
from sr_jax.workdir import checkpointing, run_dir


def _params(workdir):
  _, _, params, step = run_dir.load_run(str(workdir), "latest")
  return step, [np.asarray(x) for x in jax.tree.leaves(params)]


@pytest.fixture(scope="module")
def workdir(finished_run):
  return finished_run


def test_half_written_checkpoint_is_never_restored(test_config, tmp_path):
  test_config.train.update(num_devices=1, num_steps=3)
  train.train_and_evaluate(test_config, str(tmp_path))
  # What a kill during the save of step 6 leaves behind.
  partial = tmp_path / "checkpoints" / "6.orbax-checkpoint-tmp-1234"
  (partial / "state").mkdir(parents=True)
  (partial / "state" / "garbage").write_bytes(b"\0" * 10)
  ckpt = checkpointing.Checkpointer(str(tmp_path))
  assert ckpt.latest_step() == 3
  ckpt.close()
  test_config.train.num_steps = 6
  state = train.train_and_evaluate(test_config, str(tmp_path))
  assert int(state.step) == 6 and not partial.exists()


def test_checkpoint_pruned_while_being_read_is_retried_or_named(test_config, tmp_path, monkeypatch):
  """A live trainer deletes old checkpoints: 'latest' re-lists and loads the next; a fixed step says so."""
  test_config.train.update(num_devices=1, num_steps=6)
  test_config.checkpoint_every = 3
  train.train_and_evaluate(test_config, str(tmp_path))
  real_restore = checkpointing.Checkpointer.restore

  def restore(self, step, abstract):
    if step == 6:  # Pruned between listing and reading.
      shutil.rmtree(os.path.join(self.directory, "6"))
    return real_restore(self, step, abstract)

  monkeypatch.setattr(checkpointing.Checkpointer, "restore", restore)
  assert run_dir.load_run(str(tmp_path), "latest").step == 3
  os.makedirs(tmp_path / "checkpoints" / "6" / "state")
  with pytest.raises(FileNotFoundError, match="deleted while being read"):
    run_dir.load_run(str(tmp_path), 6)


def test_disk_full_during_save_is_a_clear_error(test_config, tmp_path, monkeypatch):
  test_config.train.update(num_devices=1, num_steps=6)
  ckpt_cls = checkpointing.ocp.CheckpointManager
  real_save = ckpt_cls.save

  def save(self, step, *args, **kwargs):
    if step == 6:
      raise OSError(errno.ENOSPC, "No space left on device")
    return real_save(self, step, *args, **kwargs)

  monkeypatch.setattr(ckpt_cls, "save", save)
  with pytest.raises(OSError, match=r"saving checkpoint 6 .* the disk is full\. Earlier checkpoints are "
                                    r"intact \(\[3\]\)"):
    train.train_and_evaluate(test_config, str(tmp_path))
  monkeypatch.undo()
  assert _params(tmp_path)[0] == 3


def test_checkpoint_from_before_the_disc_field_still_loads(test_config, tmp_path):
  """Runs saved before TrainState grew its optional GAN field resume and load (the field stays None)."""
  test_config.train.update(num_devices=1, num_steps=3)
  state = train.train_and_evaluate(test_config, str(tmp_path / "new"))
  old = {k: v for k, v in vars(state).items() if k != "disc"}  # The TrainState layout of earlier releases.
  (tmp_path / "old").mkdir()
  (tmp_path / "old" / "config.json").write_text((tmp_path / "new" / "config.json").read_text())
  ckpt = checkpointing.Checkpointer(str(tmp_path / "old"), async_save=False)
  ckpt.save(3, old, {"note": "legacy"})
  ckpt.close()
  _, _, params, step = run_dir.load_run(str(tmp_path / "old"), "latest")
  assert step == 3
  jax.tree.map(np.testing.assert_array_equal, params, state.params)
  test_config.train.num_steps = 4
  resumed = train.train_and_evaluate(test_config, str(tmp_path / "old"))
  assert int(resumed.step) == 4 and resumed.disc is None


def test_garbage_metrics_keep_the_checkpoint_usable_and_out_of_best(workdir, tmp_path, caplog):
  wd = corrupt_checkpoint(workdir, tmp_path / "wd", "metrics")
  with caplog.at_level(logging.WARNING):
    assert run_dir.load_run(wd, "latest").step == 6
  assert "checkpoint 6: its metrics file is unreadable" in caplog.text
  best = run_dir.load_run(wd, "best").step
  assert best == 3  # The only step whose validation can still be read.


def test_orbax_reporting_a_full_disk_as_a_value_error_is_a_save_error(test_config, tmp_path, monkeypatch):
  """The same without root: Orbax's own exception type and text, injected where it raises it."""
  import orbax.checkpoint as ocp

  def full(self, step, *args, **kwargs):
    raise ValueError('RESOURCE_EXHAUSTED: Error writing local file "x/_sharding": Failed to write 18045 bytes to '
                     "file 13: No space left on device [os_error_code='28']")

  monkeypatch.setattr(ocp.CheckpointManager, "save", full)
  test_config.train.update(num_devices=1, num_steps=3)
  with pytest.raises(checkpointing.CheckpointSaveError, match="failed: the disk is full. Earlier checkpoints are "
                                                              "intact \\(none\\)"):
    train.train_and_evaluate(test_config, str(tmp_path))
