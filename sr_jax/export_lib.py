"""Exports a trained model for runtimes without JAX: a TensorFlow SavedModel (jax2tf with shape polymorphism:
any batch, height and width; TF Serving, TFLite converters and tf2onnx take it from there).

The exported function takes float32 NHWC images in [0, 1] and returns the SR images (float32, unclipped), like
``train_step.predict``; ``verify`` runs the export on an odd-sized image and compares it with JAX.
"""

from __future__ import annotations

import os

import jax
import numpy as np
import tensorflow as tf
from flax import nnx
from jax.experimental import jax2tf

from sr_jax import run_dir
from sr_jax.models import registry

FORMATS = ("saved_model",)


def _serving_fn(run: run_dir.Run):
  config = run.config.model.copy_and_resolve_references()
  config.conv_impl = "xla"  # The batch-folding 'wide' layout is a CPU speed trick; exports use plain convs.
  graphdef = registry.generator_graphdef(config)
  params = run.params
  return lambda x: nnx.merge(graphdef, params)(x), config


def saved_model(run: run_dir.Run, output: str) -> str:
  """Writes a SavedModel at ``output`` with signature ``serving_default(images: float32[b, h, w, C])``."""
  fn, config = _serving_fn(run)
  c = config.channels
  module = tf.Module()
  # h, w >= 4 lets RRDBNet's reflect padding (x2/x1 inputs of any size) lower.
  converted = jax2tf.convert(fn, polymorphic_shapes=[f"(b, h, w, {c})"],
                             polymorphic_constraints=("h >= 4", "w >= 4"), with_gradient=False,
                             native_serialization_platforms=("cpu", "cuda"))
  module.fn = tf.function(converted, input_signature=[tf.TensorSpec([None, None, None, c], tf.float32,
                                                                    name="images")], autograph=False)
  tf.saved_model.save(module, output, signatures={"serving_default": module.fn})
  return output


def verify(run: run_dir.Run, path: str, size: tuple[int, int] = (37, 29)) -> float:
  """Max |export - JAX| on a random odd-sized image, the export run by TensorFlow."""
  fn, config = _serving_fn(run)
  x = np.random.default_rng(0).random((1, *size, config.channels)).astype(np.float32)
  ref = np.asarray(jax.jit(fn)(x))
  got = tf.saved_model.load(path).signatures["serving_default"](images=tf.constant(x))
  got = next(iter(got.values())).numpy()
  if got.shape != ref.shape:
    raise ValueError(f"{path}: output shape {got.shape}, JAX gives {ref.shape}")
  return float(np.abs(got - ref).max())


def export(workdir: str, fmt: str, output: str, step: str = "best", raw_weights: bool = False) -> float:
  """Exports the run at ``workdir`` and verifies it; returns the max difference from JAX."""
  if fmt not in FORMATS:
    raise ValueError(f"--format={fmt!r}; accepted: {', '.join(FORMATS)}")
  if os.path.exists(output):
    raise FileExistsError(f"{output} exists; give a new --output")
  run = run_dir.load_run(workdir, step, raw_weights=raw_weights)
  saved_model(run, output)
  return verify(run, output)
