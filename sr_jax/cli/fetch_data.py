r"""Downloads the benchmark and training sets, verifies every file's SHA-256, and lays them out for SR_DATA_DIR.

  python -m sr_jax.cli.fetch_data Set5 Set14 B100 T91 BSD200 --to=data/
  SR_DATA_DIR=data/ python -m pytest -q tests

Sources and checks: sr_jax/data/benchmark_data.py. --mirror=URL reads URL/<set>/<file> instead (a copy of your own).
"""

from absl import flags

from sr_jax import cli
from sr_jax.core import download
from sr_jax.data import benchmark_data

flags.DEFINE_string("to", None, "Folder to lay the sets out in (then set SR_DATA_DIR to it).")
flags.DEFINE_string("mirror", None, "Base URL laid out as MIRROR/<set>/<file>, instead of the public mirrors.")
flags.DEFINE_float("timeout", 60.0, "Seconds to wait for a server to answer each read.", lower_bound=0.001)
flags.DEFINE_float("deadline", download.DEFAULT_DEADLINE, "Seconds one file's download may take.", lower_bound=0.001)
flags.DEFINE_bool("verbose", False, "Show the traceback of user errors (download failures) too.")
flags.mark_flags_as_required(["to"])
FLAGS = flags.FLAGS


def main(argv):
  names = argv[1:] or sorted(benchmark_data.SOURCES)
  benchmark_data.fetch(names, FLAGS.to, mirror=FLAGS.mirror, timeout=FLAGS.timeout,
                       deadline=FLAGS.deadline)
  print(f"Done. Point the tests at it: SR_DATA_DIR={FLAGS.to}")


def run() -> None:
  """Console script ``sr-fetch-data``."""
  cli.run(main)


if __name__ == "__main__":
  run()
