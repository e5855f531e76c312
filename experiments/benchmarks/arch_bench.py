r"""One row per architecture of the architecture study (experiments/arch_study_x4.py) at its study size: parameters,
analytic GFLOPs per output pixel, receptive field, train step (the study's batch 16 of 16² LR patches, x4, L1)
and whole-image inference of a 128² LR image (512² out); JSON lines.

  python -m experiments.benchmarks.arch_bench --out=experiments/results/arch_bench_DATE.jsonl
  python -m experiments.benchmarks.arch_bench --only=edsr,rcan --steps=3     # a subset
"""

from __future__ import annotations

import json

import jax
from absl import app, flags

from experiments import arch_study_x4
from experiments.benchmarks import measure, timing
from sr_jax.models import registry

flags.DEFINE_list("only", [], "Architectures (model.name) to measure; default all of the study.")
flags.DEFINE_integer("steps", 5, "Timed train steps / inference repeats after the warm-up.")
flags.DEFINE_integer("infer_size", 128, "LR side of the inference image.")
flags.DEFINE_string("out", None, "Also append the JSON lines to this file.")
FLAGS = flags.FLAGS
BATCH, PATCH = 16, 16  # The study's (configs/rdn_291_x4.py).


def measure_one(label: str, model: dict) -> dict:
  config = arch_study_x4.config_for(model["name"])
  call, flops = measure.train_call(config, BATCH, PATCH)
  compile_s, step_s = timing.warmup_then_median(call, FLAGS.steps, jax.block_until_ready)
  _, infer_s = timing.warmup_then_median(measure.infer_call(config.model, FLAGS.infer_size), FLAGS.steps)
  m = config.model
  out_mp = (FLAGS.infer_size * m.scale) ** 2 / 1e6
  return dict(label=label, model=m.name, params=registry.count_params(m),
              gflop_per_output_px=round(registry.flops_per_output_pixel(m) / 1e9, 6),
              receptive_field=registry.receptive_field(m), tile_overlap=registry.tile_overlap(m),
              train_compile_s=round(compile_s, 1), train_step_s=round(step_s, 4),
              train_patches_per_s=round(BATCH / step_s, 1), train_gflop_per_s=round(flops / step_s / 1e9, 1),
              study_train_min=round(step_s * config.train.num_steps / 60, 1),
              infer_s=round(infer_s, 3), infer_output_mp_per_s=round(out_mp / infer_s, 3),
              backend=jax.default_backend())


def main(argv):
  del argv
  for label, model in arch_study_x4.ARCHITECTURES.items():
    if FLAGS.only and model["name"] not in FLAGS.only:
      continue
    row = json.dumps(measure_one(label, model))
    print(row, flush=True)
    if FLAGS.out:
      with open(FLAGS.out, "a") as f:
        f.write(row + "\n")


if __name__ == "__main__":
  app.run(main)
