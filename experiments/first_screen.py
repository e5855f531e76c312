r"""The README's first picture: a published model's x4 upscale beside bicubic, on a photo no model here trained on.

  python -m experiments.first_screen --pretrained=realesrgan_x4plus --output=experiments/results/published/x4plus_vs_bicubic.png

scikit-image's chelsea (the cat), reduced x4 with MATLAB bicubic and stored as a JPEG at quality 60 (what a
phone or a website keeps), then upscaled x4 by bicubic and by the model (run by sr_jax in JAX, imported from the
authors' ncnn files); a 120x120 crop of each beside the original, and the PSNR (Y) / LPIPS of the whole image.
"""

from __future__ import annotations

import os

import matplotlib
import numpy as np
from absl import flags

from sr_jax import cli, metrics
from sr_jax.core import atomic
from sr_jax.data import datasets
from sr_jax.data.degradations import ops
from sr_jax.hub import model_zoo
from sr_jax.image import image_io, imresize
from sr_jax.inference import upscaler
from sr_jax.workdir import run_dir

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file-only backend)

flags.DEFINE_string("pretrained", "realesrgan_x4plus", "Published model (sr-pretrained list).")
flags.DEFINE_string("photo", "chelsea", "scikit-image photo.")
flags.DEFINE_string("output", "experiments/results/published/x4plus_vs_bicubic.png", "PNG to write.")
flags.DEFINE_integer("crop", 120, "Crop side in HR pixels.", lower_bound=16)
FLAGS = flags.FLAGS


def main(argv):
  del argv
  run = run_dir.load_run(model_zoo.ensure(FLAGS.pretrained), "latest")
  s = run.config.model.scale
  hr = imresize.modcrop(image_io.read_image(datasets.skimage_files(FLAGS.photo)[0]), s)
  lr = ops.to_uint8(ops.jpeg(ops.planes(imresize.downscale_uint8(hr, s)), 60))
  outs = {"bicubic": imresize.to_uint8(imresize.imresize(lr / 255.0, s)),
          FLAGS.pretrained: imresize.to_uint8(upscaler.Upscaler(run.graphdef, run.params, run.config.model,
                                                                 tile=192)(lr))}
  t, l = int(hr.shape[0] * 0.35), int(hr.shape[1] * 0.45)
  c = FLAGS.crop
  panels = [("input x4 JPEG q60 (nearest)", np.repeat(np.repeat(lr, s, 0), s, 1))]
  lpips = metrics.registry.lpips_alex
  panels += [(f"{k}\nPSNR {metrics.psnr(v, hr, shave=s):.2f} dB, LPIPS {lpips(v, hr, s):.3f}", v)
             for k, v in outs.items()] + [("original", hr)]
  fig, axes = plt.subplots(1, len(panels), figsize=(2.4 * len(panels), 2.8))
  for ax, (label, img) in zip(axes, panels):
    ax.imshow(img[t:t + c, l:l + c], interpolation="nearest")
    ax.set_title(label, fontsize=7)
    ax.axis("off")
  fig.tight_layout()
  os.makedirs(os.path.dirname(FLAGS.output) or ".", exist_ok=True)
  with atomic.replace(FLAGS.output) as f:
    fig.savefig(f, format="png", dpi=110)
  plt.close(fig)
  print(f"Wrote {FLAGS.output}")


if __name__ == "__main__":
  cli.run(main)
