"""experiments/launch.py: launchers sharing a root (status writes, member locks), a launcher killed or
interrupted."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

from experiments import launch
from programs import ENV, error_lines, REPO, run_module
from sr_jax.core import atomic
from sr_jax.workdir import checkpointing, run_dir


def _sweep(tmp_path, steps):
  path = tmp_path / "sweep.py"
  path.write_text(f'BASE_CONFIG = "test"\n\ndef sweep(add):\n  add(name="m", **{{"train.num_steps": {steps}, '
                  '"train.num_devices": 1, "checkpoint_every": 2, "eval_every": 1000, "log_every": 2})\n'
                  '  add(name="ft", **{"train.init_from": "{root}/m", "train.num_steps": 2, "train.num_devices": 1})\n')
  return str(path)


def _launch_and_kill(sweep, root, until):
  """Starts a launcher on ``sweep``, waits for ``until()``, kills the launcher with SIGKILL and waits for its
  trainer to stop; returns the trainer's PID."""
  proc = subprocess.Popen([sys.executable, "-m", "experiments.launch", sweep, f"--root={root}", "--only=m"], cwd=REPO,
                          env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 300
  while not until() and time.time() < deadline:
    time.sleep(0.5)
  trainer = run_dir.trainer_holding(str(root / "m"))
  assert until() and trainer and trainer.startswith("trainer PID"), (root / "m" / "train.log").read_text()[-3000:]
  pid = int(trainer.split()[2])
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  deadline = time.time() + 120
  while atomic.alive(pid) and time.time() < deadline:
    time.sleep(0.2)
  assert not atomic.alive(pid), "the trainer outlived its launcher"
  return pid


def test_status_writers_never_collide_and_readers_never_see_half_a_file(tmp_path):
  errors, stop = [], threading.Event()

  def writer(i):
    try:
      for n in range(150):
        launch._write_status(str(tmp_path), {"writer": i, "n": n, "pad": "x" * (1000 * (i + 1))})
    except Exception as e:  # noqa: BLE001
      errors.append(e)

  def reader():
    while not stop.is_set():
      try:
        with open(tmp_path / "launch.json") as f:
          json.load(f)
      except FileNotFoundError:
        pass
      except Exception as e:  # noqa: BLE001
        errors.append(e)

  threads = [threading.Thread(target=writer, args=(i,)) for i in range(3)]
  r = threading.Thread(target=reader)
  r.start()
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  stop.set()
  r.join()
  assert not errors and sorted(os.listdir(tmp_path)) == ["launch.json"]


def test_a_member_another_launcher_runs_is_left_to_it_and_a_damaged_status_is_not_a_crash(tmp_path):
  sweep = _sweep(tmp_path, 4)
  root = tmp_path / "root"
  (root / "m").mkdir(parents=True)
  holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom sr_jax import locks\n"
                             f"l = locks.Lock({str(root / 'm' / launch.MEMBER_LOCK)!r}, 'launcher')\n"
                             "assert l.acquire() is None\nprint('held', flush=True)\ntime.sleep(600)"],
                            cwd=REPO, stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == "held"
    (root / "m" / "launch.json").write_text('{"status": "running"}{"status"')  # What interleaved writers left.
    res = run_module("experiments.launch", sweep, f"--root={root}")
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stdout + res.stderr[-2000:]
    assert "launch.json is unreadable (JSONDecodeError" in res.stderr
    assert re.search(rf"m +running elsewhere +0.0  launcher PID {holder.pid} on host", res.stdout), res.stdout
    assert "waiting" in res.stdout and "it needs m, which is not finished" in res.stdout, res.stdout
    assert "0 ok, 0 failed, 2 left to another launcher or trainer" in res.stdout, res.stdout
    assert not (root / "m" / "checkpoints").exists()  # Not started a second time.
  finally:
    holder.kill()
    holder.wait()
  res = run_module("experiments.launch", sweep, f"--root={root}")  # The holder is gone: both run now.
  assert res.returncode == 0 and "2 members: 2 ok, 0 failed" in res.stdout, res.stdout + res.stderr[-2000:]


def test_a_launcher_killed_with_sigkill_leaves_no_orphan_trainer_and_the_next_launch_resumes(tmp_path):
  sweep = _sweep(tmp_path, 100000)
  root = tmp_path / "root"
  log = root / "m" / "train.log"
  _launch_and_kill(sweep, root, lambda: checkpointing.saved_steps(str(root / "m" / "checkpoints")))
  text = log.read_text()
  assert text.count("Stopped by SIGTERM") == 1, text[-3000:]  # One SIGTERM: it saved, then stopped.
  stopped = checkpointing.saved_steps(str(root / "m" / "checkpoints"))[-1]
  assert f"Stopped by SIGTERM at step {stopped}/100000 after " in text and "min: checkpoint saved" in text
  assert run_dir.trainer_holding(str(root / "m")) is None
  _launch_and_kill(sweep, root, lambda: f"Resuming from {root / 'm' / 'checkpoints'} at step {stopped}" in
                   log.read_text())
  assert log.read_text().count("Stopped by SIGTERM") == 2


def test_ctrl_c_on_a_launcher_stops_its_members_as_stopped_not_done_and_starts_no_other(tmp_path):
  sweep = _sweep(tmp_path, 100000)
  root = tmp_path / "root"
  proc = subprocess.Popen([sys.executable, "-m", "experiments.launch", sweep, f"--root={root}"], cwd=REPO, env=ENV,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
  deadline = time.time() + 300
  while not checkpointing.saved_steps(str(root / "m" / "checkpoints")) and time.time() < deadline:
    time.sleep(0.5)
  os.killpg(proc.pid, signal.SIGINT)  # What Ctrl-C in its terminal does: the whole process group.
  out, err = proc.communicate(timeout=300)
  errs = error_lines(err)
  assert proc.returncode == 130 and len(errs) == 1 and "launch.py: interrupted (Ctrl-C); the members in progress "
  "saved a checkpoint" in errs[0], err[-3000:]
  status = json.load(open(root / "m" / "launch.json"))
  assert status["status"] == "stopped" and "run this command again to resume it" in status["error"], status
  assert "Stopped by SIGINT" in (root / "m" / "train.log").read_text()
  assert not (root / "ft").exists()  # Not started after the Ctrl-C (it needs m, which did not finish).
