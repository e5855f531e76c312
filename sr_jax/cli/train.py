"""Trains a model: ``python -m sr_jax.cli.train --config=quickstart --workdir=runs/quickstart`` (or ``sr-train``).

``--config`` is a shipped config's name (configs/) or a config file path; override any value with
``--config.section.key=value``. Multi-host: see docs/training.md "Multi-host".
"""

import textwrap

from absl import app, flags

from sr_jax import cli

cli.starting("loading JAX and TensorFlow")  # Seconds of imports: the first line comes before them.

import jax  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from sr_jax.core import native_logs  # noqa: E402

with native_logs.quiet_banners():  # TensorFlow's C++ start-up banners, printed while it loads (core/native_logs).
  import tensorflow as tf
  from sr_jax import configs
  from sr_jax.training import train

flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and results (resumed if it exists).")
config_flags.DEFINE_config_file("config", None, "Training config: a shipped config's name or a file path.",
                                lock_config=True)
flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() (multi-host; auto-detects "
                  "SLURM / Cloud TPU, or use --coordinator_address, --num_processes, --process_id).")
flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (multi-host).")
flags.DEFINE_integer("num_processes", None, "Number of processes (multi-host).")
flags.DEFINE_integer("process_id", None, "This process's index (multi-host).")
flags.DEFINE_enum("cpu_collectives", None, ["gloo", "mpi"], "Cross-process collectives for CPU-only runs "
                  "(e.g. several local processes over loopback).")
flags.DEFINE_bool("allow_config_change", False, "Resume a run with a config whose recipe (loss, data, batch, "
                  "optimiser, ...) differs from the run's; the change is recorded in WORKDIR/config_history.json.")
flags.DEFINE_bool("verbose", False, "Show the traceback of user errors (config, data, workdir) too.")
flags.mark_flags_as_required(["config", "workdir"])
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  # tf.data runs on host CPUs; a GPU build of TensorFlow must not claim accelerator memory JAX needs.
  tf.config.set_visible_devices([], "GPU")
  if FLAGS.cpu_collectives:
    jax.config.update("jax_cpu_collectives_implementation", FLAGS.cpu_collectives)
  if FLAGS.distributed or FLAGS.coordinator_address:
    jax.distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
  train.train_and_evaluate(FLAGS.config, FLAGS.workdir, allow_config_change=FLAGS.allow_config_change)


def run() -> None:
  """Console script ``sr-train``."""
  cli.run(main, prepare=configs.resolve_argv, more_help=lambda: "\n".join(textwrap.wrap(
      "Shipped configs (--config=NAME): " + ", ".join(configs.names()), 116, subsequent_indent="  ")))


if __name__ == "__main__":
  run()
