"""hub/importers: weights refused when they are not finite, empty, flattened or of the wrong shape (named with
the shape the file holds), a full disk during an import."""

import os
import sys
import types

import numpy as np
import pytest
from faults import fill, tmpfs

from programs import run_module
from sr_jax.hub import importers
from sr_jax.hub.importers import common

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden"))
import edsr_rcan_reference  # noqa: E402
import hat_reference  # noqa: E402
import rrdbnet_reference  # noqa: E402
import rrdbnet_reference as ref  # noqa: E402
import swinir_reference  # noqa: E402


GOLDEN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")


def _state_dicts():
  hat = np.load(os.path.join(GOLDEN_DIR, "hat_reference.npz"))
  swin = np.load(os.path.join(GOLDEN_DIR, "swinir_reference.npz"))
  er = np.load(os.path.join(GOLDEN_DIR, "edsr_rcan_reference.npz"))
  return {"rrdbnet": rrdbnet_reference.state_dict("x4"),
          "hat": hat_reference.state_dict(hat, "hat_x2"),
          "swinir": swinir_reference.state_dict(swin, "classical_x2"),
          "rcan": edsr_rcan_reference.state_dict(er, "basicsr_rcan_x2", edsr_rcan_reference.seed("basicsr_rcan_x2"))}


def test_non_finite_weights_are_refused_at_import(tmp_path):
  sd = ref.state_dict("x4")
  sd["conv_last.weight"] = sd["conv_last.weight"].copy()
  sd["conv_last.weight"][0, 0, 0, 0] = np.nan
  np.savez(tmp_path / "nan.npz", **sd)
  with pytest.raises(importers.common.LayoutError, match="conv_last.weight: 1 of .* NaN or infinite"):
    importers.import_to_workdir(str(tmp_path / "nan.npz"), str(tmp_path / "w"))
  assert not (tmp_path / "w").exists()


def test_a_wrong_tensor_is_named_with_the_shape_the_file_holds(tmp_path):
  sd = ref.state_dict("x4")
  sd["conv_hr.weight"] = np.zeros((16, 8, 3, 3), np.float32)  # OIHW; the model needs (16, 16, 3, 3).
  np.savez(tmp_path / "bad.npz", **sd)
  with pytest.raises(importers.common.LayoutError,
                     match=r"conv_hr.weight: shape \(16, 8, 3, 3\) in the file does not fit conv_hr/kernel, which "
                           r"needs \(16, 16, 3, 3\)"):
    importers.import_to_workdir(str(tmp_path / "bad.npz"), str(tmp_path / "w"))


def test_an_import_on_a_full_disk_leaves_nothing_and_the_retry_works(tmp_path):
  np.savez(tmp_path / "w.npz", **ref.state_dict("x4"))
  with tmpfs(tmp_path / "disk", size="2m") as disk:
    fill(disk, leave_kb=60)
    res = run_module("sr_jax.cli.import_weights", f"--weights={tmp_path / 'w.npz'}", f"--workdir={disk / 'imp'}")
    errs = [l for l in res.stderr.splitlines() if l.strip()]
    assert res.returncode == 1 and len(errs) == 1 and "the disk is full. Nothing was written" in errs[0], res.stderr
    assert not (disk / "imp").exists()
    os.remove(disk / ".filler")
    res = run_module("sr_jax.cli.import_weights", f"--weights={tmp_path / 'w.npz'}", f"--workdir={disk / 'imp'}")
    assert res.returncode == 0, res.stderr[-2000:]


def test_zero_sized_and_flattened_tensors_are_refused_by_every_importer(tmp_path):
  rng = np.random.default_rng(0)
  for model, sd in _state_dicts().items():
    weights = sorted(k for k, v in sd.items() if v.ndim >= 2)
    picked = set(rng.choice(weights, 6, replace=False)) | {weights[0], weights[-1]}
    for key in sorted(picked):
      for how, value in (("zero", np.zeros((0,) + sd[key].shape[1:], np.float32)), ("flat", sd[key].reshape(-1))):
        path = str(tmp_path / f"{model}_{how}.npz")
        np.savez(path, **{**sd, key: value})
        try:
          importers.read_model(path)
        except common.LayoutError as e:
          assert path in str(e)
        else:  # A flattened tensor the importer never reads the shape of must still fail the shape check.
          raise AssertionError(f"{model}: {key} {how} was imported")


def test_sizes_read_off_the_tensors_must_be_positive():
  fmt = types.SimpleNamespace(NAME="HAT (official)", MAY_BE_ZERO=("overlap_ratio",))
  importers.check_architecture({"name": "hat", "overlap_ratio": 0.0, "compress_ratio": 3}, fmt, "f.pth")
  with pytest.raises(common.LayoutError, match="f.pth: its tensors give model.compress_ratio = 0"):
    importers.check_architecture({"name": "hat", "compress_ratio": 0}, fmt, "f.pth")
