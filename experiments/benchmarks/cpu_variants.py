r"""Times the paper RDN train step / inference under each CPU variant tried for issue #8; JSON lines.

  python -m experiments.benchmarks.cpu_variants --out=/tmp/cpu_variants.jsonl
  python -m experiments.benchmarks.cpu_variants --variants=xla,wide --what=train --config=default

Every variant runs bench.py in a fresh process (XLA flags are read once per process): a conv formulation
(model.conv_impl) and optional XLA_FLAGS. Each printed line is bench.py's JSON plus "variant".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from absl import app, flags

from experiments.benchmarks import bench  # noqa: F401  (defines bench.py's flags, passed on to it)
from sr_jax import configs

# name -> (conv_impl, XLA_FLAGS)
VARIANTS = {
    "xla": ("xla", ""),
    "wide": ("wide", ""),
    "xla+onednn": ("xla", "--xla_cpu_experimental_onednn_custom_call=true"),
    "xla+onednn_graph": ("xla", "--xla_cpu_use_onednn=true"),
    "wide+onednn": ("wide", "--xla_cpu_experimental_onednn_custom_call=true"),
    "wide+fast_math": ("wide", "--xla_cpu_enable_fast_math=true"),
}


flags.DEFINE_list("variants", list(VARIANTS), "Variants to time (names above).")
flags.DEFINE_string("out", "", "Also write the JSON lines to this file.")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  # bench.py's own flags (--config, --what, --batch, --patch, ...) given here are passed on unchanged.
  passthrough = [a for a in sys.argv[1:] if not a.startswith(("--variants", "--out"))]
  lines = []
  for name in FLAGS.variants:
    impl, xla_flags = VARIANTS[name]
    env = dict(os.environ, XLA_FLAGS=xla_flags)
    cmd = [sys.executable, "-m", "experiments.benchmarks.bench", *passthrough, f"--config.model.conv_impl={impl}",
           f"--tile={FLAGS.infer_size}"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
      line = {"variant": name, "error": (proc.stderr.strip().splitlines() or ["?"])[-1][:300]}
      print(json.dumps(line), flush=True)
      lines.append(line)
      continue
    for raw in proc.stdout.splitlines():
      if raw.startswith("{"):
        line = {"variant": name, **json.loads(raw)}
        if line.get("benchmark") == "inference_tiled":
          continue  # Tile = image here: the same as inference_full.
        print(json.dumps(line), flush=True)
        lines.append(line)
  if FLAGS.out:
    with open(FLAGS.out, "w") as f:
      f.writelines(json.dumps(x) + "\n" for x in lines)


if __name__ == "__main__":
  app.run(main, argv=configs.resolve_argv(sys.argv))
