"""Flags shared by the experiment CLIs (absl allows each name once per process; launch and report both read it)."""

from absl import flags

DATA_DIR = flags.DEFINE_string("data_dir", None, "Benchmark folder holding Set5/, Set14/, B100/ ... "
                               "(default: $SR_DATA_DIR).")
