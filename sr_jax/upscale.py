r"""Upscales image files with a trained model.

  python -m sr_jax.upscale --workdir=runs/quickstart --input=photos/ --output=upscaled/
  python -m sr_jax.upscale --checkpoint=runs/x2/checkpoints/3000 --input=frame.png --output=out/ --tile=0

PNG/JPEG/BMP/WebP/TIFF in; gray stays gray, RGBA keeps its alpha (upscaled by bicubic), palette/16-bit/CMYK
become 8-bit RGB, EXIF orientation is applied. Outputs are ``<name>_x<scale>.<ext>`` in --output (format from
--ext, default the input's). An input is never overwritten; an unreadable file is reported and skipped.
Large images are processed in tiles (--tile LR pixels, overlapping by the receptive field: seam-free).
"""

from __future__ import annotations

import os
import sys

from absl import app, flags, logging
from tqdm import tqdm

from sr_jax import checkpointing, image_io, inference, run_dir

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Training workdir (uses its best checkpoint, see --step).")
flags.DEFINE_string("checkpoint", None, "A checkpoint directory WORKDIR/checkpoints/STEP (instead of --workdir).")
flags.DEFINE_string("step", "best", "With --workdir: 'best', 'latest' or a step number.")
flags.DEFINE_string("input", None, "An image file or a folder of images.")
flags.DEFINE_string("output", None, "Output folder (created if missing).")
flags.DEFINE_string("ext", None, "Output format by extension: png, jpg, webp, bmp, tif (default: the input's).")
flags.DEFINE_integer("tile", 192, "LR tile side for tiled inference; 0 processes each image whole.")
flags.DEFINE_integer("overlap", None, "Tile overlap in LR pixels (default: the receptive field: exact).")
flags.DEFINE_integer("batch_size", 4, "Tiles per forward pass.")
flags.DEFINE_bool("self_ensemble", False, "Average the x8 flips/rotations (slower, slightly better).")
flags.DEFINE_bool("bf16", False, "Compute in bfloat16 (parameters stay float32).")
flags.DEFINE_integer("max_pixels", 178_956_970, "Refuse larger inputs (decompression-bomb guard).")
flags.mark_flags_as_required(["input", "output"])


def output_path(src: str, out_dir: str, scale: int, ext: str | None) -> str:
  stem, src_ext = os.path.splitext(os.path.basename(src))
  ext = ("." + ext.lstrip(".")) if ext else (src_ext.lower() or ".png")
  return os.path.join(out_dir, f"{stem}_x{scale}{ext}")


def collect_inputs(path: str) -> list[str]:
  if os.path.isdir(path):
    return image_io.list_images(path)
  if not os.path.exists(path):
    raise FileNotFoundError(f"--input {path!r} does not exist")
  return [path]


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  checkpointing.quiet_library_logs()
  if bool(FLAGS.workdir) == bool(FLAGS.checkpoint):
    raise app.UsageError("give exactly one of --workdir and --checkpoint")
  if FLAGS.checkpoint:
    workdir, step = run_dir.split_checkpoint_path(FLAGS.checkpoint)
    if step == "best":
      raise app.UsageError(f"--checkpoint={FLAGS.checkpoint} is not a WORKDIR/checkpoints/STEP directory")
  else:
    workdir, step = FLAGS.workdir, FLAGS.step
  config, graphdef, params, step = run_dir.load_run(workdir, step, bf16=FLAGS.bf16)
  scale = config.model.scale
  upscaler = inference.Upscaler(graphdef, params, config.model, tile=FLAGS.tile, overlap=FLAGS.overlap,
                                batch_size=FLAGS.batch_size, self_ensemble=FLAGS.self_ensemble,
                                progress=True)
  files = collect_inputs(FLAGS.input)
  os.makedirs(FLAGS.output, exist_ok=True)
  inputs = {os.path.realpath(f) for f in files}
  done, failed = 0, []
  for src in tqdm(files, desc="images", unit="img", disable=len(files) < 2):
    dst = output_path(src, FLAGS.output, scale, FLAGS.ext)
    if os.path.realpath(dst) in inputs:
      failed.append(f"{src}: output {dst} would overwrite an input; choose another --output")
      logging.error(failed[-1])
      continue
    try:
      img, alpha = image_io.read_image_and_alpha(src, keep_gray=True, max_pixels=FLAGS.max_pixels)
      sr = inference.upscale_image(upscaler, img, alpha)
      if alpha is not None and os.path.splitext(dst)[1].lower() in (".jpg", ".jpeg", ".bmp"):
        sr = sr[..., :-1]  # Formats without alpha.
      image_io.save_image(dst, sr)
      done += 1
    except (image_io.ImageReadError, OSError, ValueError) as e:
      failed.append(str(e) if src in str(e) else f"{src}: {e}")
      logging.error("Skipping %s", failed[-1])
  print(f"{done} image(s) upscaled x{scale} into {FLAGS.output} (checkpoint step {step})"
        + (f"; {len(failed)} skipped:\n  " + "\n  ".join(failed) if failed else ""))
  if failed:
    sys.exit(1)


def run() -> None:
  """Console script ``sr-upscale``."""
  app.run(main)


if __name__ == "__main__":
  run()
