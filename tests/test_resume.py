"""Faults: kill -9 mid-run (and mid-save), leftover partial checkpoints, a full disk, odd image files."""

import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from programs import REPO
from sr_jax.workdir import checkpointing, run_dir


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


def test_ctrl_c_is_heard_within_a_step_the_loop_queues_one_step_at_most(test_config, tmp_path, monkeypatch):
  """The loop keeps one step queued behind the running one: a signal stops the run after the steps already queued
  when it came plus at most the one being dispatched (before, Python raced dozens of steps ahead of the CPU, and
  Ctrl-C waited for all of them: 35 steps, 3 min 23 s on a fine-tune)."""
  from sr_jax.training import carried as carried_lib, train
  test_config.train.update(num_steps=1000, num_devices=1, batch_size=16)
  test_config.data.patch_size = 24  # A step of tens of ms: slower than the loop's Python, as every real step is.
  test_config.update(log_every=1000, eval_every=1000, checkpoint_every=1000)
  outputs, at_signal = [], {}
  real_step = carried_lib.CarriedState.step

  def step(self, *args):
    outputs.append(real_step(self, *args))
    if len(outputs) == 8:
      at_signal["done"] = sum(all(x.is_ready() for x in jax.tree.leaves(o)) for o in outputs)
      os.kill(os.getpid(), signal.SIGINT)
    return outputs[-1]

  monkeypatch.setattr(carried_lib.CarriedState, "step", step)
  train.train_and_evaluate(test_config, str(tmp_path / "run"))
  stopped = checkpointing.saved_steps(str(tmp_path / "run" / "checkpoints"))
  queued = 8 - at_signal["done"]
  assert queued <= 2, at_signal  # The one running and the one just dispatched.
  assert stopped == [len(outputs)] and len(outputs) <= 9  # Saved where it stopped: the signal's step or the next.
  assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Handlers given back.


def test_a_second_ctrl_c_stops_at_once_even_while_the_loop_waits_for_a_step(tmp_path):
  """The first SIGINT asks for a checkpoint after the step; the second ends the process at once, although the main
  thread is inside XLA waiting for a step of seconds (where Python runs no handler: before, it was ignored)."""
  victim = _main(tmp_path / "run", "--config.train.num_steps=100000", "--config.log_every=1",
                 "--config.checkpoint_every=100000", "--config.eval_every=100000", "--config.train.batch_size=16",
                 "--config.data.patch_size=64", "--config.model.features=32", "--config.model.growth=32",
                 "--config.model.num_blocks=4", "--config.model.num_layers=4")
  lines = []
  for line in victim.stdout:
    lines.append(line)
    if " step 2/100000" in line:
      break
  rate = float(lines[-1].split(" patches/s")[0].rsplit(" ", 1)[1])
  victim.send_signal(signal.SIGINT)
  time.sleep(0.3)
  second = time.time()
  victim.send_signal(signal.SIGINT)
  out = victim.communicate(timeout=300)[0]
  waited = time.time() - second
  assert 16 / rate > 1.0, lines[-1]  # A step takes over a second...
  assert waited < 0.6 * 16 / rate and victim.returncode == 130, (waited, out[-2000:])  # ...and it did not wait.
  assert "SIGINT again: stopped at once, without saving. Checkpoints in" in out and "Traceback" not in out, out
