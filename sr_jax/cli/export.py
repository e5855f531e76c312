r"""Exports a trained model as a TensorFlow SavedModel or an ONNX model (any batch, height and width) and
verifies it.

  python -m sr_jax.cli.export --workdir=runs/quickstart --output=runs/exported/quickstart
  python -c "import tensorflow as tf; m = tf.saved_model.load('runs/exported/quickstart'); \
      print(m.signatures['serving_default'](images=tf.zeros([1, 37, 29, 3])))"
  pip install --no-deps -r requirements-export.txt  # once, for ONNX
  python -m sr_jax.cli.export --workdir=runs/quickstart --format=onnx --output=runs/exported/quickstart.onnx

Input ``images``: float32 NHWC in [0, 1]; output: the SR images (float32, unclipped; clip and round to save).
The export is run by TensorFlow (onnxruntime for ONNX) on an odd-sized image and compared with JAX before the
command reports success.
"""

from absl import app, flags

from sr_jax.core import native_logs

with native_logs.quiet_banners():  # TensorFlow's C++ start-up banners, printed while it loads (core/native_logs).
  from sr_jax import cli
  from sr_jax.inference import export_lib

flags.DEFINE_string("workdir", None, "Training (or imported) workdir.")
flags.DEFINE_string("step", "best", "Checkpoint: 'best', 'latest' or a step number.")
flags.DEFINE_enum("format", "saved_model", export_lib.FORMATS, "Export format.")
flags.DEFINE_string("output", None, "Where to write the export (must not exist).")
flags.DEFINE_bool("raw_weights", False, "Export the raw weights of a run that kept an EMA (default: the EMA).")
flags.DEFINE_bool("verbose", False, "Show the traceback of user errors too.")
flags.mark_flags_as_required(["workdir", "output"])
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  diff = export_lib.export(FLAGS.workdir, FLAGS.format, FLAGS.output, FLAGS.step, FLAGS.raw_weights)
  print(f"Exported {FLAGS.workdir} to {FLAGS.output} ({FLAGS.format}); max |export - JAX| on a 37x29 image: "
        f"{diff:.2e}")
  if diff > 1e-4:
    raise SystemExit(f"the export differs from JAX by {diff:.2e} (> 1e-4)")


def run() -> None:
  """Console script ``sr-export``."""
  cli.run(main)


if __name__ == "__main__":
  run()
