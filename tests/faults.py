"""Faults made on purpose: a small filesystem that fills up, a damaged checkpoint, a folder of the user's."""

import contextlib
import os
import shutil
import subprocess

import numpy as np
import pytest


@contextlib.contextmanager
def tmpfs(path, size="4m"):
  """A small tmpfs at ``path`` (root only; skips elsewhere)."""
  path.mkdir(parents=True, exist_ok=True)
  out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
  if out.returncode:
    pytest.skip(f"cannot mount a tmpfs here ({out.stderr.decode().strip()}); needs root")
  try:
    yield path
  finally:
    subprocess.run(["umount", "-l", str(path)], check=False)


def fill(folder, leave_kb):
  """Fills the filesystem of ``folder`` up to ``leave_kb`` free KiB."""
  st = os.statvfs(folder)
  free = st.f_bavail * st.f_frsize
  with open(folder / ".filler", "wb") as f:
    f.write(b"\0" * max(0, free - leave_kb * 1024))


def corrupt_checkpoint(src, dst, how):
  """A copy of the finished run ``src`` at ``dst`` whose step 6 is damaged: its manifest truncated, random or
  empty, or (``how="metrics"``) its metrics file garbage. Returns ``dst``."""
  shutil.copytree(src, dst)
  state = os.path.join(dst, "checkpoints", "6", "state")
  manifest = os.path.join(state, "manifest.ocdbt")
  data = open(manifest, "rb").read()
  if how == "truncated":
    open(manifest, "wb").write(data[:len(data) // 2])
  elif how == "random":
    open(manifest, "wb").write(np.random.default_rng(0).bytes(len(data)))
  elif how == "empty":
    open(manifest, "wb").close()
  elif how == "metrics":
    open(os.path.join(dst, "checkpoints", "6", "metrics", "metrics"), "w").write("{garbage")
  return str(dst)


def tree(folder) -> dict:
  """{relative path: bytes} of every file under ``folder``."""
  out = {}
  for root, _, names in os.walk(folder):
    for n in names:
      p = os.path.join(root, n)
      out[os.path.relpath(p, folder)] = open(p, "rb").read()
  return out


def user_folder(path):
  """A folder of the user's (a config.json and a .pth of their own) at ``path``; returns its files as ``tree``."""
  (path / "checkpoints").mkdir(parents=True)
  (path / "config.json").write_text('{"mine": true}')
  (path / "checkpoints" / "my_model.pth").write_bytes(b"the user's own weights")
  return tree(path)
