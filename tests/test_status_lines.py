"""No long command starts silent: each says what it is doing within seconds (before its imports), and each
phase that can take minutes (importing a model, compiling, scoring images) is announced."""

import os
import subprocess
import sys
import time

from programs import REPO


def _timed_lines(cmd: list[str]) -> tuple[list[tuple[float, str]], int]:
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
  start = time.monotonic()
  proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  lines = [(time.monotonic() - start, line.rstrip()) for line in proc.stdout]
  return lines, proc.wait(timeout=600)


def test_every_long_command_says_what_it_does_from_its_first_seconds(tmp_path, trained_workdir, data_dir):
  photo = tmp_path / "in"
  from programs import photos
  photos(photo, n=1)
  py = [sys.executable, "-m"]
  commands = {
      "sr-train": py + ["sr_jax.cli.train", "--config=test", f"--workdir={tmp_path / 'w'}",
                        "--config.train.num_devices=1"],
      "sr-upscale": py + ["sr_jax.cli.upscale", f"--workdir={trained_workdir}", f"--input={photo}",
                          f"--output={tmp_path / 'up'}"],
      "sr-evaluate": py + ["sr_jax.cli.evaluate", f"--workdir={trained_workdir}", f"--data_dir={data_dir}",
                           "--datasets=Set5", f"--output_dir={tmp_path / 'ev'}", "--heatmaps=none", "--nosheets"],
  }
  expected = {"sr-train": ["Compiling the train step", "first step, compilation included"],
              "sr-upscale": ["Upscaling 1 image(s) x2 with checkpoint step"],
              "sr-evaluate": ["Scoring RDN (step", "on Set5 x2"]}
  for name, cmd in commands.items():
    lines, code = _timed_lines(cmd)
    text = "\n".join(line for _, line in lines)
    assert code == 0, text[-3000:]
    first_at, first = lines[0]
    assert first.endswith(": loading JAX and TensorFlow ...") or first.endswith(": loading JAX ..."), first
    assert first_at < 10, (name, first_at)  # Before the imports, whatever the machine's load.
    for phrase in expected[name]:
      assert phrase in text, (name, phrase, text[-3000:])
