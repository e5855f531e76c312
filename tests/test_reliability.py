"""Faults: kill -9 mid-run (and mid-save), leftover partial checkpoints, a full disk, odd image files."""

import errno
import os
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from PIL import Image

from sr_jax.data import datasets
from sr_jax.image import image_io
from sr_jax.training import train
from sr_jax.workdir import checkpointing, run_dir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_ARGS = ["--config=test", "--config.train.num_steps=60", "--config.checkpoint_every=4",
         "--config.eval_every=60", "--config.log_every=4", "--config.train.num_devices=1"]


def _main(workdir, *extra):
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
  return subprocess.Popen([sys.executable, "-m", "sr_jax.cli.train", f"--workdir={workdir}", *_ARGS, *extra],
                          cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _params(workdir):
  _, _, params, step = run_dir.load_run(str(workdir), "latest")
  return step, [np.asarray(x) for x in jax.tree.leaves(params)]


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
  """The 60-step run the interrupted ones must reproduce exactly."""
  workdir = tmp_path_factory.mktemp("ref")
  proc = _main(workdir)
  out = proc.communicate(timeout=600)[0]
  assert proc.returncode == 0, out[-3000:]
  assert "Finished 60 steps" in out and "workdir" in out  # The one-line summary at the end.
  return _params(workdir)


def _wait_for_checkpoint(workdir, at_least: int) -> None:
  ckpts = workdir / "checkpoints"
  deadline = time.time() + 300
  while time.time() < deadline and not (ckpts.exists() and any(d.name.isdigit() and int(d.name) >= at_least
                                                               for d in ckpts.iterdir())):
    time.sleep(0.02)


def _assert_resumes_to(reference, workdir) -> None:
  resumed = _main(workdir)
  out = resumed.communicate(timeout=600)[0]
  assert resumed.returncode == 0 and "Resuming" in out, out[-3000:]
  (s1, a), (s2, b) = reference, _params(workdir)
  assert s1 == s2 == 60
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x, y)


def test_sigkill_mid_run_then_resume_is_bit_identical(reference_run, tmp_path):
  victim = _main(tmp_path / "run")
  _wait_for_checkpoint(tmp_path / "run", 12)
  victim.send_signal(signal.SIGKILL)  # Mid-run; often mid-save of the next checkpoint too.
  victim.communicate()
  done = sorted(int(d.name) for d in (tmp_path / "run" / "checkpoints").iterdir() if d.name.isdigit())
  assert done and max(done) < 60, done
  _assert_resumes_to(reference_run, tmp_path / "run")


_REAL = ("--config.data.degradation=realesrgan", "--config.train.ema_decay=0.9", "--config.train.num_steps=24")


def test_sigkill_then_resume_is_bit_identical_with_realesrgan_degradations_and_ema(tmp_path):
  """Degraded patches (a function of seed and index) and the EMA weights resume exactly too."""
  ref = _main(tmp_path / "ref", *_REAL)
  out = ref.communicate(timeout=600)[0]
  assert ref.returncode == 0 and "Finished 24 steps" in out, out[-3000:]
  victim = _main(tmp_path / "run", *_REAL)
  _wait_for_checkpoint(tmp_path / "run", 8)
  victim.send_signal(signal.SIGKILL)
  victim.communicate()
  resumed = _main(tmp_path / "run", *_REAL)
  out = resumed.communicate(timeout=600)[0]
  assert resumed.returncode == 0 and "Resuming" in out, out[-3000:]
  for raw in (False, True):  # The EMA weights and the raw ones.
    a = run_dir.load_run(str(tmp_path / "ref"), "latest", raw_weights=raw)
    b = run_dir.load_run(str(tmp_path / "run"), "latest", raw_weights=raw)
    assert a.step == b.step == 24
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
      np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_second_trainer_on_a_live_workdir_is_refused_and_a_dead_ones_lock_is_not(tmp_path):
  long = "--config.train.num_steps=100000"
  victim = _main(tmp_path / "run", long)
  _wait_for_checkpoint(tmp_path / "run", 4)
  # A reader never deletes a live trainer's in-flight save.
  partial = tmp_path / "run" / "checkpoints" / f"999{checkpointing.TMP_MARKER}-1"
  partial.mkdir()
  run_dir.load_run(str(tmp_path / "run"), "latest")
  assert partial.exists()
  second = _main(tmp_path / "run", long)
  out = second.communicate(timeout=300)[0]
  assert second.returncode == 1 and f"in use by trainer PID {victim.pid} on host" in out, out[-2000:]
  assert "Traceback" not in out and partial.exists()
  victim.send_signal(signal.SIGKILL)
  victim.communicate()
  last = max(int(d.name) for d in (tmp_path / "run" / "checkpoints").iterdir() if d.name.isdigit())
  again = _main(tmp_path / "run", f"--config.train.num_steps={last + 4}")
  out = again.communicate(timeout=300)[0]
  assert again.returncode == 0 and "Resuming from" in out, out[-3000:]  # The dead process's lock is gone.
  assert not partial.exists()  # The trainer that holds the lock cleans up partial saves.


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_ctrl_c_save_exit_cleanly_and_resume_bit_identically(reference_run, tmp_path, sig):
  victim = _main(tmp_path / "run")
  _wait_for_checkpoint(tmp_path / "run", 8)
  victim.send_signal(sig)
  out = victim.communicate(timeout=300)[0]
  name = signal.Signals(sig).name
  assert victim.returncode == 0, out[-3000:]
  assert f"Stopped by {name} at step" in out and "Traceback" not in out and "KeyboardInterrupt" not in out
  stopped = int(out.split(f"Stopped by {name} at step ")[1].split("/")[0])
  ckpts = tmp_path / "run" / "checkpoints"
  assert stopped < 60 and (ckpts / str(stopped)).is_dir()  # Saved at the step it stopped at.
  assert not [d for d in os.listdir(ckpts) if checkpointing.TMP_MARKER in d]
  _assert_resumes_to(reference_run, tmp_path / "run")


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


def _odd_images(folder):
  rng = np.random.default_rng(0)
  rgb = rng.integers(0, 256, (48, 40, 3)).astype(np.uint8)
  Image.fromarray(rgb).save(folder / "ok.png")
  Image.fromarray(rgb).convert("CMYK").save(folder / "cmyk.jpg")
  Image.fromarray(rgb).convert("P").save(folder / "palette.png")
  Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(folder / "deep16.png")
  Image.fromarray(rgb[..., 0]).save(folder / "gray.bmp")
  Image.fromarray(np.dstack([rgb, rgb[..., 0]])).save(folder / "rgba.webp", lossless=True, exact=True)
  exif = Image.Image.getexif(Image.fromarray(rgb))
  exif[0x0112] = 8  # Rotate 90 CCW.
  Image.fromarray(rgb).save(folder / "exif.jpg", exif=exif)
  good = (folder / "ok.png").read_bytes()
  (folder / "truncated.png").write_bytes(good[: len(good) // 2])
  (folder / "zero.png").write_bytes(b"")
  (folder / "notes.txt").write_text("hello")
  Image.fromarray(rgb[:10, :10]).save(folder / "tiny.png")
  return rgb


def test_odd_image_files_are_decoded_or_skipped_with_a_reason(tmp_path, caplog):
  rgb = _odd_images(tmp_path)
  images = datasets.load_source(str(tmp_path), min_size=16)
  assert sorted(images.names) == sorted(["ok.png", "cmyk.jpg", "palette.png", "deep16.png", "gray.bmp",
                                         "rgba.webp", "exif.jpg"])
  reasons = "\n".join(images.skipped)
  for name in ("truncated.png", "zero.png", "notes.txt", "tiny.png"):
    assert name in reasons
  assert "smaller than the 16px minimum" in reasons
  get = dict(zip(images.names, images.images))
  np.testing.assert_array_equal(get["ok.png"], rgb)
  np.testing.assert_array_equal(get["rgba.webp"], rgb)
  assert get["exif.jpg"].shape == (40, 48, 3)  # Rotated by its EXIF orientation.
  np.testing.assert_array_equal(get["deep16.png"][..., 0], rgb[..., 0])
  assert all(im.dtype == np.uint8 and im.shape[-1] == 3 for im in images.images)


def test_decompression_bomb_is_refused_with_the_limit(tmp_path):
  Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "big.png")
  with pytest.raises(image_io.ImageReadError, match="big.png.*decompression-bomb"):
    image_io.read_image(str(tmp_path / "big.png"), max_pixels=1000)


def test_folder_without_usable_images_fails_before_compiling(test_config, tmp_path, monkeypatch):
  (tmp_path / "data").mkdir()
  (tmp_path / "data" / "a.png").write_bytes(b"broken")
  test_config.data.train = str(tmp_path / "data")
  compiled = []
  monkeypatch.setattr(jax, "jit", lambda *a, **k: compiled.append(1))
  with pytest.raises(ValueError, match=r"no usable images .*a.png"):
    train.train_and_evaluate(test_config, str(tmp_path / "run"))
  assert not compiled
