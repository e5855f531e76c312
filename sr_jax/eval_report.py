"""Scores upscalers on benchmark datasets and writes the tables: the library behind ``sr_jax.evaluate``.

``evaluate(upscalers, datasets, ...)`` writes ``summary.json`` ({dataset: {"x2": {psnr, ssim, bicubic_psnr,
bicubic_ssim, num_images, skipped}}}), ``per_image.csv``, ``table.md`` and, with ``error_analysis``, per-image
heatmaps and best/worst patch sheets. Datasets are folder names under ``data_dir``, folder paths, or ``div2k``.
"""

from __future__ import annotations

import csv
import os

from absl import logging

from sr_jax import datasets, div2k, error_maps, eval_lib, imresize, run_dir


def load_pairs(dataset: str, scale: int, data_dir: str, tfds_data_dir: str | None = None,
               tfds_manual_dir: str | None = None) -> tuple[list[eval_lib.TestPair], list[str]]:
  """(test pairs, skipped files) of one dataset at one scale."""
  if dataset.lower() == "div2k":  # Scored on the LR images DIV2K ships (made by MATLAB), as the papers do.
    names, hrs, lrs = div2k.load_hr_images(f"div2k/bicubic_x{scale}:validation", data_dir=tfds_data_dir,
                                           manual_dir=tfds_manual_dir, scale=scale)
    return [eval_lib.make_pair(n, hr, scale, lr) for n, hr, lr in zip(names, hrs, lrs)], []
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
  run_dir.write_json(os.path.join(output_dir, "summary.json"), summary)
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
