r"""Benchmark: upscale one large image with tiled inference; prints one JSON line.

  python -m experiments.benchmarks.upscale_large --workdir=runs/quickstart --size=1920x1080 --tile=192

Reports wall time (compile included and excluded), megapixels/s of output, and the process's peak resident
memory, so the "memory is bounded by the tile, not the image" claim can be checked by varying --size.
Without --image, the input is a real photo (scikit-image's hubble_deep_field, resized with MATLAB bicubic).
"""

import json
import resource
import time

import numpy as np
from absl import app, flags

from sr_jax.data import datasets
from sr_jax.image import image_io, imresize
from sr_jax.inference import upscaler
from sr_jax.workdir import run_dir

flags.DEFINE_string("workdir", None, "Trained workdir.")
flags.DEFINE_string("image", None, "Input image (default: a resized bundled photo).")
flags.DEFINE_string("size", "1920x1080", "WxH of the generated input when --image is not given.")
flags.DEFINE_integer("tile", 192, "LR tile side (0: whole image).")
flags.DEFINE_integer("batch_size", 4, "Tiles per forward pass.")
flags.mark_flags_as_required(["workdir"])
FLAGS = flags.FLAGS


def main(argv):
  del argv
  if FLAGS.image:
    lr = image_io.read_image(FLAGS.image)
  else:
    w, h = (int(v) for v in FLAGS.size.split("x"))
    photo = image_io.read_image(datasets.skimage_files("hubble_deep_field")[0])
    lr = imresize.to_uint8(imresize.imresize(photo / 255.0, output_shape=(h, w)))
  config, graphdef, params, step = run_dir.load_run(FLAGS.workdir, "best")
  up = upscaler.Upscaler(graphdef, params, config.model, tile=FLAGS.tile, batch_size=FLAGS.batch_size)
  t0 = time.perf_counter()
  side = 2 * FLAGS.tile + 2 * up.overlap if FLAGS.tile else 64
  up(lr[:side, :side])  # Warm-up: compiles the tile shape (whole-image runs compile inside the timing).
  t1 = time.perf_counter()
  out = up(lr)
  t2 = time.perf_counter()
  mp = out.shape[0] * out.shape[1] / 1e6
  print(json.dumps({
      "benchmark": "upscale_large", "input": f"{lr.shape[1]}x{lr.shape[0]}", "output": f"{out.shape[1]}x{out.shape[0]}",
      "scale": config.model.scale, "tile": FLAGS.tile, "overlap": up.overlap, "step": step,
      "model": {k: config.model[k] for k in ("num_blocks", "num_layers", "growth", "features")},
      "warmup_s": round(t1 - t0, 2), "seconds": round(t2 - t1, 2), "output_mpix_per_s": round(mp / (t2 - t1), 3),
      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
      "finite": bool(np.isfinite(out).all())}))


if __name__ == "__main__":
  app.run(main)
