r"""Evaluates a trained run or the bicubic baseline on benchmark sets, the papers' way.

  python -m sr_jax.evaluate --baseline=bicubic --data_dir=../shared/data --datasets=Set5,Set14,B100 \
      --scales=2,3,4 --output_dir=out
  python -m sr_jax.evaluate --workdir=runs/quickstart --data_dir=../shared/data --datasets=Set5,Set14,B100

Datasets: names of folders under --data_dir (Set5, Set14, B100, Urban100, Manga109, ...), any folder path of
HR images, or ``div2k`` (DIV2K validation through tensorflow-datasets, scored on its shipped LR images).
Writes ``summary.json`` ({dataset: {"x2": {psnr, ssim, bicubic_psnr, bicubic_ssim, num_images, skipped}}}),
``per_image.csv``, ``table.md``, ``heatmaps/`` and ``sheets/`` into --output_dir (default WORKDIR/eval).
"""

from __future__ import annotations

import csv
import json
import os

from absl import app, flags, logging

from sr_jax import checkpointing, datasets, error_maps, eval_lib, imresize

FLAGS = flags.FLAGS


def load_pairs(dataset: str, scale: int, data_dir: str, tfds_data_dir: str | None = None,
               tfds_manual_dir: str | None = None) -> tuple[list[eval_lib.TestPair], list[str]]:
  """(test pairs, skipped files) of one dataset at one scale."""
  if dataset.lower() == "div2k":
    from sr_jax import div2k
    return div2k.validation_pairs(scale, data_dir=tfds_data_dir, manual_dir=tfds_manual_dir), []
  candidates = ([os.path.join(data_dir, dataset)] if data_dir else []) + [dataset]
  folder = next((c for c in candidates if os.path.isdir(c)), None)
  if folder is None:
    raise FileNotFoundError(f"dataset {dataset!r} not found (looked for {' and '.join(candidates)}); give "
                            f"--data_dir (or ${datasets.DATA_ENV}) holding it, or a folder path")
  images = datasets.load_source(f"folder:{folder}", keep_gray=True, min_size=eval_lib.min_eval_size(scale))
  return eval_lib.prepare(images, scale), images.skipped


def bicubic_upscale(scale: int):
  return lambda lr: imresize.imresize(lr / 255.0, scale)


def markdown_table(summary: dict, label: str) -> str:
  if label == "bicubic":
    lines = ["| dataset | scale | bicubic PSNR / SSIM | images |", "|---|---|---|---|"]
    for dataset, per_scale in summary.items():
      for scale, r in per_scale.items():
        lines.append(f"| {dataset} | {scale} | {r['psnr']:.2f} / {r['ssim']:.4f} | {r['num_images']}"
                     + (f" ({r['skipped']} skipped)" if r.get("skipped") else "") + " |")
    return "\n".join(lines)
  lines = [f"| dataset | scale | {label} PSNR / SSIM | bicubic PSNR / SSIM | gain (dB) | images |",
           "|---|---|---|---|---|---|"]
  for dataset, per_scale in summary.items():
    for scale, r in per_scale.items():
      lines.append(f"| {dataset} | {scale} | {r['psnr']:.2f} / {r['ssim']:.4f} | {r['bicubic_psnr']:.2f} / "
                   f"{r['bicubic_ssim']:.4f} | {r['psnr'] - r['bicubic_psnr']:+.2f} | {r['num_images']}"
                   + (f" ({r['skipped']} skipped)" if r.get("skipped") else "") + " |")
  return "\n".join(lines)


def evaluate(upscalers: dict[int, object], dataset_names: list[str], data_dir: str, output_dir: str, *,
             label: str, error_analysis: bool = True, tfds_data_dir: str | None = None,
             tfds_manual_dir: str | None = None) -> dict:
  """Scores every dataset at every scale in ``upscalers``; writes summary.json, per_image.csv, table.md."""
  os.makedirs(output_dir, exist_ok=True)
  summary, rows = {}, []
  for dataset in dataset_names:
    name = os.path.basename(os.path.normpath(dataset))
    for scale, upscale in upscalers.items():
      pairs, skipped = load_pairs(dataset, scale, data_dir, tfds_data_dir, tfds_manual_dir)
      result, per_image, outputs = eval_lib.score_set(pairs, upscale, scale, keep_outputs=len(pairs))
      result["skipped"] = len(skipped)
      summary.setdefault(name, {})[f"x{scale}"] = result
      rows += [{"dataset": name, "scale": scale, **r} for r in per_image]
      logging.info("%s x%d: PSNR %.3f SSIM %.4f (bicubic %.3f / %.4f) over %d images", name, scale,
                   result["psnr"], result["ssim"], result["bicubic_psnr"], result["bicubic_ssim"], len(pairs))
      if error_analysis:
        _error_analysis(os.path.join(output_dir, "heatmaps", f"{name}_x{scale}"),
                        os.path.join(output_dir, "sheets", f"{name}_x{scale}.png"),
                        f"{label} on {name} x{scale}: worst and best patches", pairs, outputs, scale)
  with open(os.path.join(output_dir, "summary.json"), "w") as f:
    json.dump(summary, f, indent=1)
  if rows:
    with open(os.path.join(output_dir, "per_image.csv"), "w", newline="") as f:
      writer = csv.DictWriter(f, fieldnames=list(rows[0]))
      writer.writeheader()
      writer.writerows(rows)
  table = markdown_table(summary, label)
  with open(os.path.join(output_dir, "table.md"), "w") as f:
    f.write(table + "\n")
  return summary


def _error_analysis(heat_dir: str, sheet_path: str, title: str, pairs, outputs, scale: int) -> None:
  os.makedirs(heat_dir, exist_ok=True)
  patch = 16 * scale
  items = []
  for pair, sr in zip(pairs, outputs):
    error_maps.save_heatmap(os.path.join(heat_dir, os.path.splitext(pair.name)[0] + ".png"), pair.hr, sr)
    items += [(score, pair.name, pair, sr, top, left)
              for score, top, left in error_maps.patch_scores(pair, sr, patch, scale)]
  if items:
    error_maps.save_contact_sheet(sheet_path, title, items, patch)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  checkpointing.quiet_library_logs()
  if bool(FLAGS.workdir) == bool(FLAGS.baseline):
    raise app.UsageError("give exactly one of --workdir and --baseline")
  data_dir = FLAGS.data_dir or os.environ.get(datasets.DATA_ENV, "")
  scales = [int(s) for s in FLAGS.scales] if FLAGS.scales else None
  if FLAGS.baseline:
    upscalers = {s: bicubic_upscale(s) for s in (scales or [2, 3, 4])}
    output_dir, label = FLAGS.output_dir or "eval_bicubic", "bicubic"
  else:
    from sr_jax import inference
    config, graphdef, params, step = inference.load_run(FLAGS.workdir, FLAGS.step)
    run_scale = config.model.scale
    if scales and scales != [run_scale]:
      raise app.UsageError(f"scale mismatch: the checkpoint in {FLAGS.workdir} is a x{run_scale} model; "
                           f"--scales={','.join(map(str, scales))} asks for others")
    upscaler = inference.Upscaler(graphdef, params, config.model, tile=FLAGS.tile, overlap=FLAGS.overlap,
                                  self_ensemble=FLAGS.self_ensemble)
    upscalers = {run_scale: upscaler}
    output_dir = FLAGS.output_dir or os.path.join(FLAGS.workdir, "eval")
    label = f"RDN{'+' if FLAGS.self_ensemble else ''} (step {step})"
  evaluate(upscalers, FLAGS.datasets, data_dir, output_dir, label=label, error_analysis=FLAGS.error_maps,
           tfds_data_dir=FLAGS.tfds_data_dir, tfds_manual_dir=FLAGS.tfds_manual_dir)
  with open(os.path.join(output_dir, "table.md")) as f:
    print(f.read())
  print(f"Results in {output_dir}/ (summary.json, per_image.csv, table.md, heatmaps/, sheets/)")


def define_flags() -> None:
  """Command-line flags, defined only when run as a program (the module is also imported as a library)."""
  flags.DEFINE_string("workdir", None, "Training workdir to evaluate (its config.json and checkpoints).")
  flags.DEFINE_string("step", "best", "Checkpoint: 'best' (by validation PSNR), 'latest' or a step number.")
  flags.DEFINE_enum("baseline", None, ["bicubic"], "Evaluate a baseline instead of a trained run.")
  flags.DEFINE_string("data_dir", None, "Folder holding the benchmark sets (default: $SR_DATA_DIR).")
  flags.DEFINE_list("datasets", ["Set5", "Set14", "B100"], "Benchmark set names, folder paths or 'div2k'.")
  flags.DEFINE_list("scales", None, "Scales to evaluate (default: the run's scale; 2,3,4 for baselines).")
  flags.DEFINE_string("output_dir", None, "Where results go (default: WORKDIR/eval, or ./eval_bicubic).")
  flags.DEFINE_bool("self_ensemble", False, "x8 self-ensemble (the papers' '+' rows).")
  flags.DEFINE_integer("tile", 0, "LR tile size for tiled inference (0: whole images).")
  flags.DEFINE_integer("overlap", None, "Tile overlap in LR pixels (default: the receptive field radius).")
  flags.DEFINE_bool("error_maps", True, "Write heatmaps and best/worst patch sheets.")
  flags.DEFINE_string("tfds_data_dir", None, "tensorflow-datasets data_dir for 'div2k'.")
  flags.DEFINE_string("tfds_manual_dir", None, "Folder with the official DIV2K zips (offline use).")


if __name__ == "__main__":
  define_flags()
  app.run(main)
