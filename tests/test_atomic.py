"""core/atomic.py: temporary names that fit any name the folder can hold."""

import os

from sr_jax.core import atomic


def test_any_name_that_can_be_written_can_be_written_atomically(tmp_path):
  for name in ("a" * 255, "é" * 127 + "x", "b" * 240):
    path = tmp_path / name
    atomic.write_text(str(path), "ok")
    assert path.read_text() == "ok"
    assert len(os.path.basename(atomic.temp_path(str(path))).encode()) <= 255
  made = atomic.temp_dir(str(tmp_path / ("c" * 255)))
  assert os.path.isdir(made) and len(os.path.basename(made).encode()) <= 255
