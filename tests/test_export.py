"""Exports (SavedModel, ONNX): dynamic batch/height/width, run by TensorFlow / onnxruntime, equal to JAX."""

import os
import subprocess
import sys

import numpy as np
import pytest
from flax import nnx

from sr_jax.hub import importers
from sr_jax.inference import export_lib
from sr_jax.training import train
from sr_jax.workdir import run_dir

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden"))
import rrdbnet_reference as ref  # noqa: E402


def test_rdn_saved_model_equals_jax_at_any_size(tmp_path, test_config):
  test_config.train.update(num_devices=1, num_steps=2)
  test_config.update(eval_every=2, checkpoint_every=2)
  train.train_and_evaluate(test_config, str(tmp_path / "run"))
  out = subprocess.run([sys.executable, "-m", "sr_jax.cli.export", f"--workdir={tmp_path / 'run'}",
                        f"--output={tmp_path / 'sm'}"], capture_output=True, text=True)
  assert out.returncode == 0 and "max |export - JAX|" in out.stdout, out.stderr[-2000:]
  import tensorflow as tf
  model = tf.saved_model.load(str(tmp_path / "sm")).signatures["serving_default"]
  run = run_dir.load_run(str(tmp_path / "run"))
  for shape in ((2, 16, 9, 3), (1, 31, 40, 3)):  # Other batch sizes and shapes than the verification's.
    x = np.random.default_rng(1).random(shape).astype(np.float32)
    got = next(iter(model(images=tf.constant(x)).values())).numpy()
    np.testing.assert_allclose(got, np.asarray(nnx.merge(run.graphdef, run.params)(x)), atol=1e-4)
  again = subprocess.run([sys.executable, "-m", "sr_jax.cli.export", f"--workdir={tmp_path / 'run'}",
                          f"--output={tmp_path / 'sm'}"], capture_output=True, text=True)
  assert again.returncode != 0 and "exists; give a new --output" in again.stderr


def test_rrdbnet_x2_saved_model_handles_odd_sizes(tmp_path):
  path = str(tmp_path / "w.npz")
  np.savez(path, **ref.state_dict("x2"))
  importers.import_to_workdir(path, str(tmp_path / "run"))
  assert export_lib.export(str(tmp_path / "run"), "saved_model", str(tmp_path / "sm"), "latest") < 1e-4
  with pytest.raises(ValueError, match="RRDBNet x2 .*use --format=saved_model"):
    export_lib.export(str(tmp_path / "run"), "onnx", str(tmp_path / "x.onnx"), "latest")


@pytest.mark.parametrize("case", ["rdn", "rrdbnet_x4"])
def test_onnx_export_equals_jax_at_any_size(tmp_path, test_config, case):
  pytest.importorskip("jax2onnx")
  import onnxruntime as ort
  workdir = str(tmp_path / "run")
  if case == "rdn":
    test_config.train.update(num_devices=1, num_steps=2)
    test_config.update(eval_every=2, checkpoint_every=2)
    train.train_and_evaluate(test_config, workdir)
  else:
    np.savez(tmp_path / "w.npz", **ref.state_dict("x4"))
    importers.import_to_workdir(str(tmp_path / "w.npz"), workdir)
  out = subprocess.run([sys.executable, "-m", "sr_jax.cli.export", f"--workdir={workdir}", "--format=onnx",
                        f"--output={tmp_path / 'm.onnx'}", "--step=latest"], capture_output=True, text=True)
  assert out.returncode == 0 and "max |export - JAX|" in out.stdout, out.stderr[-2000:]
  session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
  run = run_dir.load_run(workdir, "latest")
  for shape in ((2, 16, 9, 3), (1, 23, 30, 3)):  # Other batch sizes and shapes than the verification's.
    x = np.random.default_rng(1).random(shape).astype(np.float32)
    got = session.run(None, {"images": x})[0]
    np.testing.assert_allclose(got, np.asarray(nnx.merge(run.graphdef, run.params)(x)), atol=1e-4)
  with pytest.raises(ValueError, match="ends in .onnx"):
    export_lib.export(workdir, "onnx", str(tmp_path / "m2"), "latest")


@pytest.fixture(scope="module")
def run(finished_run):
  return finished_run


def test_a_failed_export_deletes_only_its_hidden_folder_and_never_an_output_it_did_not_make(tmp_path, run,
                                                                                              monkeypatch):
  from sr_jax.inference import export_lib
  out = tmp_path / "model.onnx"

  def someone_else_writes_it(run_, path):  # Another export finishing first, while this one was writing.
    out.write_bytes(b"the other export")
    open(path, "wb").write(b"ours")

  monkeypatch.setattr(export_lib, "onnx_model", someone_else_writes_it)
  with pytest.raises(FileExistsError, match="was created by another process during this export; it was left as it"):
    export_lib.export(run, "onnx", str(out))
  assert out.read_bytes() == b"the other export" and os.listdir(tmp_path) == ["model.onnx"]

  def interrupted(run_, path):
    os.makedirs(path)
    raise KeyboardInterrupt

  monkeypatch.setattr(export_lib, "saved_model", interrupted)
  with pytest.raises(KeyboardInterrupt):
    export_lib.export(run, "saved_model", str(tmp_path / "sm"))
  assert os.listdir(tmp_path) == ["model.onnx"]
