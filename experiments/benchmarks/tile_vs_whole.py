r"""How far tiled inference is from whole-image inference, in 8-bit levels, at several overlaps: what the default
overlap of the attention models (SwinIR, HAT) and RCAN's channel attention (tiles average over themselves) rest on.

  python -m experiments.benchmarks.tile_vs_whole --workdir=runs/arch_study_x4/swinir_s0 \
      --image=$SR_DATA_DIR/Set14/baboon.png
  python -m experiments.benchmarks.tile_vs_whole --study_model=hat   # the study's size, random weights

The image is reduced by the model's scale (MATLAB bicubic) and upscaled whole, then in ``--tile`` tiles at each
``--overlaps`` (LR pixels; 'default' is the architecture's, ``registry.tile_overlap``). One JSON line per overlap:
max and mean |tiled - whole| of the uint8 outputs, and the fraction of pixels that differ.
"""

from __future__ import annotations

import json

import numpy as np
from absl import app, flags
from flax import nnx

from experiments import arch_study_x4
from sr_jax.image import image_io, imresize
from sr_jax.inference import upscaler
from sr_jax.models import registry
from sr_jax.workdir import run_dir

flags.DEFINE_string("workdir", None, "A trained run (its latest checkpoint).")
flags.DEFINE_string("study_model", None, "Instead: the architecture study's model of this model.name, random weights.")
flags.DEFINE_string("image", None, "HR image (default: skimage's astronaut).")
flags.DEFINE_integer("tile", 48, "LR tile side.")
flags.DEFINE_list("overlaps", ["0", "8", "16", "default", "64"], "Overlaps to measure (LR pixels or 'default').")
flags.DEFINE_string("out", None, "Also append the JSON lines to this file.")
FLAGS = flags.FLAGS


def _model():
  if FLAGS.workdir:
    run = run_dir.load_run(FLAGS.workdir, "latest")
    return run.config.model, run.graphdef, run.params, FLAGS.workdir
  config = arch_study_x4.config_for(FLAGS.study_model)
  graphdef, params = nnx.split(registry.build_generator(config.model))
  return config.model, graphdef, params, f"{FLAGS.study_model} (study size, random weights)"


def main(argv):
  del argv
  m, graphdef, params, what = _model()
  if FLAGS.image:
    hr = image_io.read_image(FLAGS.image)
  else:
    from skimage import data
    hr = data.astronaut()
  lr = imresize.downscale_uint8(imresize.modcrop(hr, m.scale), m.scale)
  to8 = lambda x: imresize.to_uint8(x).astype(np.int16)
  whole = to8(upscaler.Upscaler(graphdef, params, m)(lr))
  for spec in FLAGS.overlaps:
    overlap = registry.tile_overlap(m) if spec == "default" else int(spec)
    tiled = to8(upscaler.Upscaler(graphdef, params, m, tile=FLAGS.tile, overlap=overlap)(lr))
    diff = np.abs(tiled - whole)
    row = json.dumps(dict(model=what, image=FLAGS.image or "skimage astronaut", lr=list(lr.shape[:2]), tile=FLAGS.tile,
                          overlap=overlap, default=spec == "default", max_levels=int(diff.max()),
                          mean_levels=round(float(diff.mean()), 4), differing=round(float((diff > 0).mean()), 4)))
    print(row, flush=True)
    if FLAGS.out:
      with open(FLAGS.out, "a") as f:
        f.write(row + "\n")


if __name__ == "__main__":
  app.run(main)
