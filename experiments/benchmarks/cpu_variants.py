r"""Times the paper RDN train step / inference under each CPU variant tried for issue #8; JSON lines.

  python -m experiments.benchmarks.cpu_variants --out=/tmp/cpu_variants.jsonl
  python -m experiments.benchmarks.cpu_variants --variants=xla,wide --what=train

Every variant runs bench.py in a fresh process (XLA flags are read once per process): a conv formulation
(model.conv_impl) and optional XLA_FLAGS. Each printed line is bench.py's JSON plus "variant".
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

# name -> (conv_impl, XLA_FLAGS)
VARIANTS = {
    "xla": ("xla", ""),
    "wide": ("wide", ""),
    "xla+onednn": ("xla", "--xla_cpu_experimental_onednn_custom_call=true"),
    "xla+onednn_graph": ("xla", "--xla_cpu_use_onednn=true"),
    "wide+onednn": ("wide", "--xla_cpu_experimental_onednn_custom_call=true"),
    "wide+fast_math": ("wide", "--xla_cpu_enable_fast_math=true"),
}


def main(argv=None):
  ap = argparse.ArgumentParser()
  ap.add_argument("--variants", default=",".join(VARIANTS))
  ap.add_argument("--what", default="train,infer")
  ap.add_argument("--config", default="configs/default.py")
  ap.add_argument("--batch", type=int, default=4)
  ap.add_argument("--patch", type=int, default=32)
  ap.add_argument("--infer_size", type=int, default=128)
  ap.add_argument("--steps", type=int, default=5)
  ap.add_argument("--out", default="")
  a = ap.parse_args(argv)
  lines = []
  for name in a.variants.split(","):
    impl, xla_flags = VARIANTS[name]
    env = dict(os.environ, XLA_FLAGS=xla_flags)
    cmd = [sys.executable, "-m", "experiments.benchmarks.bench", f"--config={a.config}",
           f"--config.model.conv_impl={impl}", f"--what={a.what}", f"--batch={a.batch}", f"--patch={a.patch}",
           f"--infer_size={a.infer_size}", f"--tile={a.infer_size}", f"--steps={a.steps}"]
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
  if a.out:
    with open(a.out, "w") as f:
      f.writelines(json.dumps(x) + "\n" for x in lines)


if __name__ == "__main__":
  main()
