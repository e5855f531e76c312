"""Two local JAX processes x 2 CPU devices (gloo over loopback) train like one process with 4 devices, with the
state carried as leaves (the CPU's default) or packed."""

import os
import socket
import subprocess
import sys

import numpy as np
import jax

from sr_jax.training import train
from sr_jax.workdir import run_dir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _launch_two(workdir, steps, *extra):
  port = _free_port()
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3",
             XLA_FLAGS="--xla_force_host_platform_device_count=2")
  procs = [subprocess.Popen(
      [sys.executable, "-m", "sr_jax.cli.train", "--config=test", f"--workdir={workdir}",
       f"--config.train.num_steps={steps}", f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2",
       f"--process_id={i}", "--cpu_collectives=gloo", *extra],
      cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)]
  logs = [p.communicate(timeout=600)[0] for p in procs]
  for p, log in zip(procs, logs):
    assert p.returncode == 0, log[-3000:]
  return logs


def _params(workdir):
  _, _, params, step = run_dir.load_run(workdir, "latest")
  return step, [np.asarray(x) for x in jax.tree.leaves(params)]


def test_two_processes_match_one_process_and_resume(test_config, tmp_path):
  test_config.train.num_devices = 4
  train.train_and_evaluate(test_config, str(tmp_path / "single"))
  multi = str(tmp_path / "multi")
  logs = _launch_two(multi, steps=3)  # First 3 steps, then a second launch resumes to 6.
  assert "process 1/2" in logs[1] and "mesh of 4 devices (2 processes); global batch 8" in logs[0]
  logs = _launch_two(multi, steps=6)
  assert all("at step 3" in log and "Resuming" in log for log in logs)
  (s1, single), (s2, multi_params) = _params(str(tmp_path / "single")), _params(multi)
  assert s1 == s2 == 6
  for a, b in zip(single, multi_params):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
  assert os.path.exists(os.path.join(multi, "validation.json"))
  packed = str(tmp_path / "packed")  # The state carried as packed buffers (accelerators' default) across processes.
  _launch_two(packed, 6, "--config.train.state_layout=packed")
  s3, packed_params = _params(packed)
  assert s3 == 6
  for a, b in zip(multi_params, packed_params):
    np.testing.assert_array_equal(a, b)
