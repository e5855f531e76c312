"""evaluation/eval_report.py: streaming evaluation (memory does not grow with the set), heatmaps (bounded,
sub-folders mirrored), results written atomically."""

import contextlib
import json
import os
import tracemalloc

import numpy as np
import pytest
from PIL import Image

from programs import photos, run_module
from sr_jax.core import atomic
from sr_jax.data import datasets
from sr_jax.evaluation import eval_report


def test_evaluation_memory_does_not_grow_with_the_set(tmp_path):
  """Streaming: scoring 12 images peaks about as high as scoring 3 (the SR outputs are not kept)."""
  photo = np.asarray(Image.open(datasets.skimage_files("astronaut")[0]).convert("RGB"))[:384, :384]
  peaks = {}
  for n in (3, 12):
    folder = tmp_path / f"set{n}"
    folder.mkdir()
    for i in range(n):
      Image.fromarray(np.roll(photo, 7 * i, axis=1)).save(folder / f"{i:02d}.png")
    tracemalloc.start()
    eval_report.evaluate({2: eval_report.bicubic_upscale(2)}, [str(folder)], "", str(tmp_path / f"out{n}"),
                         label="bicubic", heatmaps="none", sheets=True)
    peaks[n] = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
  one_image = photo.nbytes * 8  # float64 copies of one image, the unit of the working set.
  assert peaks[12] < peaks[3] + one_image, peaks


def test_default_heatmaps_are_bounded_and_all_is_a_flag(tmp_path):
  photos(tmp_path / "set", n=8, size=(48, 48))
  for mode, count in (("worst", 5), ("all", 8), ("none", 0)):
    eval_report.evaluate({2: eval_report.bicubic_upscale(2)}, [str(tmp_path / "set")], "", str(tmp_path / mode),
                         label="bicubic", heatmaps=mode)
    folder = tmp_path / mode / "heatmaps" / "set_x2"
    assert (len(os.listdir(folder)) if folder.exists() else 0) == count, mode


def test_evaluation_results_are_written_atomically(tmp_path, monkeypatch):
  from sr_jax.evaluation import eval_report
  photos(tmp_path / "set", n=2, size=(48, 48))
  eval_report.evaluate({2: eval_report.bicubic_upscale(2)}, [str(tmp_path / "set")], "", str(tmp_path / "ev"),
                       label="bicubic", heatmaps="none", sheets=False)
  before = (tmp_path / "ev" / "table.md").read_bytes()
  real = atomic.replace

  @contextlib.contextmanager
  def dying(path):
    with real(path) as f:
      f.write(b"| half")
      raise OSError(28, "No space left on device")
      yield f

  monkeypatch.setattr(atomic, "replace", dying)
  with pytest.raises(OSError):
    eval_report.evaluate({2: eval_report.bicubic_upscale(2)}, [str(tmp_path / "set")], "", str(tmp_path / "ev"),
                         label="bicubic", heatmaps="none", sheets=False)
  assert (tmp_path / "ev" / "table.md").read_bytes() == before


def test_evaluate_writes_heatmaps_of_images_in_sub_folders(tmp_path):
  photos(tmp_path / "set", n=1, size=(48, 48))
  photos(tmp_path / "set" / "a_subfolder", n=1, size=(48, 48), seed=3)
  for mode in ("all", "worst"):
    res = run_module("sr_jax.cli.evaluate", "--baseline=bicubic", f"--datasets={tmp_path / 'set'}", "--scales=2",
                     f"--output_dir={tmp_path / mode}", f"--heatmaps={mode}")
    assert res.returncode == 0, res.stderr[-2000:]
    assert (tmp_path / mode / "heatmaps" / "set_x2" / "a_subfolder" / "img0.png").is_file()
    assert json.loads((tmp_path / mode / "summary.json").read_text())["set"]["x2"]["num_images"] == 2
