"""Exports a trained model for runtimes without JAX, with any batch, height and width:

* ``saved_model``: a TensorFlow SavedModel (jax2tf with shape polymorphism; TF Serving, TFLite converters);
* ``onnx``: an ONNX model written by jax2onnx (opset 23; onnxruntime, TensorRT, ...). tf2onnx cannot take the
  SavedModel route: jax2tf now always embeds StableHLO (an ``XlaCallModule`` op) that tf2onnx has no converter
  for. jax2onnx pins an older orbax, so it installs with ``--no-deps`` from ``requirements-export.txt``.
  RRDBNet x2/x1 (pixel-unshuffle of a reflect-padded input) is refused: jax2onnx 0.17.1 drops the crop to a
  multiple of the unshuffle factor, which the verification caught; its SavedModel export works.

The exported function takes float32 NHWC images in [0, 1] and returns the SR images (float32, unclipped), like
``models.registry.predict``; ``verify`` runs the export on an odd-sized image and compares it with JAX.
"""

from __future__ import annotations

import logging as py_logging
import os
import shutil

import jax
import numpy as np
from flax import nnx

from sr_jax.core import atomic, errors
from sr_jax.core.errors import UserError
from sr_jax.models import registry
from sr_jax.workdir import run_dir


FORMATS = ("saved_model", "onnx")
ONNX_INSTALL = "pip install --no-deps -r requirements-export.txt"


def _serving_fn(run: run_dir.Run):
  config = run.config.model.copy_and_resolve_references()
  config.conv_impl = "xla"  # The batch-folding 'wide' layout is a CPU speed trick; exports use plain convs.
  graphdef = registry.generator_graphdef(config)
  params = run.params
  return lambda x: nnx.merge(graphdef, params)(x), config


def saved_model(run: run_dir.Run, output: str) -> str:
  """Writes a SavedModel at ``output`` with signature ``serving_default(images: float32[b, h, w, C])``."""
  import tensorflow as tf  # Only SavedModel export needs TensorFlow (ONNX export and everything else do not).
  from jax.experimental import jax2tf
  fn, config = _serving_fn(run)
  c = config.channels
  module = tf.Module()
  # h, w >= 4 lets RRDBNet's reflect padding (x2/x1 inputs of any size) lower; SwinIR needs a window.
  k = registry.min_side(config)
  converted = jax2tf.convert(fn, polymorphic_shapes=[f"(b, h, w, {c})"],
                             polymorphic_constraints=(f"h >= {k}", f"w >= {k}"), with_gradient=False,
                             native_serialization_platforms=("cpu", "cuda"))
  module.fn = tf.function(converted, input_signature=[tf.TensorSpec([None, None, None, c], tf.float32,
                                                                    name="images")], autograph=False)
  tf.saved_model.save(module, output, signatures={"serving_default": module.fn})
  return output


def onnx_model(run: run_dir.Run, output: str) -> str:
  """Writes an ONNX model at ``output`` (input ``images``: float32[B, H, W, C], output ``sr``), weights inline
  (Real-ESRGAN's 16.7 M-parameter RRDBNet: one 67 MB file, 45 s to export here; should jax2onnx spill weights
  to ``<output>.data``, that file must travel with it)."""
  to_onnx = _jax2onnx()
  config = run.config.model
  if config.name == "rrdbnet" and config.scale != 4:
    raise ValueError(f"--format=onnx: RRDBNet x{config.scale} (pixel-unshuffle) does not convert correctly with "
                     "jax2onnx 0.17.1; use --format=saved_model")
  if config.name in ("swinir", "hat"):
    raise ValueError(f"--format=onnx: {'SwinIR' if config.name == 'swinir' else 'HAT'} pads its input to window "
                     "multiples, which jax2onnx 0.17.1 cannot convert for symbolic sizes; use --format=saved_model")
  fn, config = _serving_fn(run)
  to_onnx(fn, inputs=[("B", "H", "W", config.channels)], model_name=f"sr_jax_{config.name}_x{config.scale}",
          input_names=["images"], output_names=["sr"], return_mode="file", output_path=output)
  return output


def _jax2onnx():
  try:
    from jax2onnx import to_onnx  # Optional: only --format=onnx needs it.
  except ImportError:
    raise errors.UserError(f"--format=onnx needs jax2onnx and onnxruntime: {ONNX_INSTALL}") from None
  # Its plugin scan logs tracebacks for optional example plugins (equinox, dm_pix) and onnx_ir warns on
  # untyped shape constants; neither concerns the model.
  for name in ("jax2onnx", "onnx_ir"):
    py_logging.getLogger(name).setLevel(py_logging.ERROR)
  return to_onnx


def _run_export(path: str, x: np.ndarray) -> np.ndarray:
  if path.endswith(".onnx"):
    import onnxruntime as ort
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(None, {"images": x})[0]
  import tensorflow as tf
  got = tf.saved_model.load(path).signatures["serving_default"](images=tf.constant(x))
  return next(iter(got.values())).numpy()


def verify(run: run_dir.Run, path: str, size: tuple[int, int] = (37, 29)) -> float:
  """Max |export - JAX| on a random odd-sized image, the export run by TensorFlow or onnxruntime (``.onnx``)."""
  fn, config = _serving_fn(run)
  x = np.random.default_rng(0).random((1, *size, config.channels)).astype(np.float32)
  ref = np.asarray(jax.jit(fn)(x))
  got = _run_export(path, x)
  if got.shape != ref.shape:
    raise ValueError(f"{path}: output shape {got.shape}, JAX gives {ref.shape}")
  return float(np.abs(got - ref).max())


class ExportError(UserError, ValueError):
  """An export that cannot be made as asked (format, output name)."""


def export(workdir: str, fmt: str, output: str, step: str = "best", raw_weights: bool = False) -> float:
  """Exports the run at ``workdir`` and verifies it; returns the max difference from JAX.

  The export is written in a hidden folder beside ``output`` (``atomic.temp_dir``) and moved to ``output`` only when
  complete, never over anything already there: one that fails half-way (a full disk, Ctrl-C) leaves nothing at
  ``output`` and deletes only its hidden folder, and of two exports racing to one ``output`` the second is refused
  without touching the first's files."""
  if fmt not in FORMATS:
    raise ExportError(f"--format={fmt!r}; accepted: {', '.join(FORMATS)}")
  if fmt == "onnx" and not output.endswith(".onnx"):
    raise ExportError(f"--output={output}: an ONNX export's name ends in .onnx")
  if os.path.lexists(output) or (fmt == "onnx" and os.path.lexists(output + ".data")):
    raise FileExistsError(f"{output} exists; give a new --output")
  run = run_dir.load_run(workdir, step, raw_weights=raw_weights)
  target = os.path.abspath(output)
  os.makedirs(os.path.dirname(target), exist_ok=True)
  atomic.remove_stale_dirs(os.path.dirname(target), os.path.basename(target))
  tmp = atomic.temp_dir(target)
  try:
    staged = os.path.join(tmp, os.path.basename(target))
    (onnx_model if fmt == "onnx" else saved_model)(run, staged)
    _move_into_place(staged, target, fmt == "onnx")
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  return verify(run, output)


def _move_into_place(staged: str, target: str, onnx: bool) -> None:
  """Moves a finished export to ``target`` without replacing anything there (files by hard link, which refuses an
  existing name; a SavedModel folder by rename, which refuses a non-empty one)."""
  taken = FileExistsError(f"{target} was created by another process during this export; it was left as it is and "
                          "nothing of this export was kept: give a new --output")
  try:
    if not onnx:
      os.rename(staged, target)
      return
    os.link(staged, target)
  except OSError as e:
    raise taken from e
  if os.path.exists(staged + ".data"):
    try:
      os.link(staged + ".data", target + ".data")
    except OSError as e:
      os.remove(target)  # The link this call just made.
      raise taken from e
