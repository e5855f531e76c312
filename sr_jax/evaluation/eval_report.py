"""Scores upscalers on benchmark datasets and writes the tables: the library behind ``sr_jax.cli.evaluate``.

``evaluate(upscalers, datasets, ...)`` writes ``summary.json`` ({dataset: {"x2": {psnr, ssim, bicubic_psnr,
bicubic_ssim, num_images, skipped}}}), ``per_image.csv``, ``table.md`` and, unless switched off, heatmaps and
best/worst patch sheets (``error_maps``). Images are read, upscaled and scored one at a time, so memory does not
grow with the set; unreadable files and files over ``max_pixels`` are skipped, named and counted. Datasets are
folder names under ``data_dir``, folder paths, or ``div2k``.
"""

from __future__ import annotations

import csv
import io
import os
from typing import Callable, Iterator

import numpy as np
from absl import logging

from sr_jax import metrics
from sr_jax.core import atomic, heartbeat
from sr_jax.data import datasets, div2k, paired
from sr_jax.evaluation import error_maps, eval_lib
from sr_jax.image import image_io, imresize
from sr_jax.workdir import run_dir


def iter_pairs(dataset: str, scale: int, data_dir: str, skipped: list[str], *,
               max_pixels: int | None = image_io.DEFAULT_MAX_PIXELS, tfds_data_dir: str | None = None,
               tfds_manual_dir: str | None = None) -> Iterator[eval_lib.TestPair]:
  """Test pairs of one dataset at one scale, one at a time; files left out are appended to ``skipped``."""
  if dataset.lower() == "div2k":  # Scored on the LR images DIV2K ships (made by MATLAB), as the papers do.
    for name, hr, lr in div2k.iter_examples(f"div2k/bicubic_x{scale}:validation", data_dir=tfds_data_dir,
                                            manual_dir=tfds_manual_dir, scale=scale):
      yield eval_lib.make_pair(name, hr, scale, lr)
    return
  if dataset.startswith("paired:"):  # The given LR images, scored against their HR.
    for name, hr, lr in paired.iter_pairs(*paired.parse(dataset[len("paired:"):]), scale, max_pixels=max_pixels):
      if min(hr.shape[:2]) < eval_lib.min_eval_size(scale):
        skipped.append(f"{name}: {hr.shape[1]}x{hr.shape[0]} is smaller than the "
                       f"{eval_lib.min_eval_size(scale)}px minimum")
        continue
      yield eval_lib.make_pair(name, hr, scale, lr)
    return
  if scale == 1:  # A bicubic reduction by 1 is the image itself: nothing to restore, a meaningless score.
    raise datasets.DataError(f"dataset {dataset!r} at x1: a same-size model is scored on degraded inputs, which a "
                             "folder of clean images does not hold; give them as paired:CLEAN_DIR,DEGRADED_DIR")
  candidates = ([os.path.join(data_dir, dataset)] if data_dir else []) + [dataset]
  folder = next((c for c in candidates if os.path.isdir(c)), None)
  if folder is None:
    raise FileNotFoundError(f"dataset {dataset!r} not found (looked for {' and '.join(candidates)}); give "
                            f"--data_dir (or ${datasets.DATA_ENV}) holding it, or a folder path")
  min_size = eval_lib.min_eval_size(scale)
  for path in image_io.list_images(folder):
    try:
      hr = image_io.read_image(path, keep_gray=True, max_pixels=max_pixels)
    except image_io.ImageReadError as e:
      skipped.append(str(e))
      logging.warning("Skipping %s", e)
      continue
    if min(hr.shape[:2]) < min_size:
      skipped.append(f"{path}: {hr.shape[1]}x{hr.shape[0]} is smaller than the {min_size}px minimum")
      logging.warning("Skipping %s", skipped[-1])
      continue
    yield eval_lib.make_pair(os.path.relpath(path, folder), hr, scale)


def bicubic_upscale(scale: int) -> Callable[[np.ndarray], np.ndarray]:
  return lambda lr: imresize.imresize(lr / 255.0, scale)


def markdown_table(summary: dict, label: str) -> str:
  """The table of ``summary``; bicubic's columns beside the model's where the rows hold them (not for the
  bicubic baseline itself, nor for sr-score's folders)."""
  rows = [r for per in summary.values() for r in per.values()]
  bicubic = label == "bicubic" or not any("bicubic_psnr" in r for r in rows)
  extra = [m for m in metrics.EXTRA if any(m in r for r in rows)]
  cols = ([f"{label} PSNR / SSIM"] if bicubic else
          [f"{label} PSNR / SSIM", "bicubic PSNR / SSIM", "gain (dB)"])
  cols += [f"{m.upper()}" + ("" if bicubic else " (bicubic)") for m in extra]
  head = ["| dataset | scale | " + " | ".join(cols) + " | images |", "|" + "---|" * (len(cols) + 3)]
  lines = []
  for dataset, per_scale in summary.items():
    for scale, r in per_scale.items():
      images = f"{r['num_images']}" + (f" ({r['skipped']} skipped)" if r.get("skipped") else "")
      cells = [dataset, scale, f"{r['psnr']:.2f} / {r['ssim']:.4f}"]
      if not bicubic:
        cells += [f"{r['bicubic_psnr']:.2f} / {r['bicubic_ssim']:.4f}", f"{r['psnr'] - r['bicubic_psnr']:+.2f}"]
      cells += [f"{r[m]:.4f}" + ("" if bicubic else f" ({r[f'bicubic_{m}']:.4f})") for m in extra]
      lines.append("| " + " | ".join(cells + [images]) + " |")
  return "\n".join(head + lines)


def score_dataset(pairs: Iterator[eval_lib.TestPair], upscale: Callable[[np.ndarray], np.ndarray], scale: int,
                  analysis: error_maps.ErrorAnalysis | None, extra: dict[str, metrics.MetricFn] | None = None,
                  name: str = "") -> list[dict]:
  """Per-image rows; each SR image is dropped once scored (and seen by the error analysis).

  ``extra``: metrics.extra_scorers (LPIPS, DISTS, NIQE), each also computed for the bicubic image.
  """
  rows, beat = [], heartbeat.Heartbeat(logging.info)  # A line every 10 s: a big model on a CPU is slow.
  for pair in pairs:
    sr = eval_lib.upscale_uint8(upscale, pair)
    row = eval_lib.score_pair(pair, sr, scale, extra)
    rows.append(row)
    beat.beat(lambda: f"{name} x{scale}: {len(rows)} images scored, the last {pair.name}")
    if analysis is not None:
      analysis.add(pair, sr, row["psnr"] - row["bicubic_psnr"])
  if analysis is not None:
    analysis.finish()
  return rows


def evaluate(upscalers: dict[int, Callable], dataset_names: list[str], data_dir: str, output_dir: str, *,
             label: str, heatmaps: str = "worst", sheets: bool = True,
             max_pixels: int | None = image_io.DEFAULT_MAX_PIXELS, tfds_data_dir: str | None = None,
             tfds_manual_dir: str | None = None, metric_names: tuple[str, ...] = ("psnr", "ssim"),
             lpips_weights: str = "") -> dict:
  """Scores every dataset at every scale in ``upscalers``; writes summary.json, per_image.csv, table.md.

  ``heatmaps``: 'worst' (the 5 images with the lowest gain over bicubic), 'all' or 'none'; ``sheets``: the
  best/worst-patch contact sheet per set and scale. ``metric_names``: PSNR and SSIM always, plus any of
  'lpips' (AlexNet; ``lpips_weights`` as in sr_jax.metrics.lpips), 'dists' and 'niqe', scored with ``scale``
  pixels cropped from each border as BasicSR does.
  """
  unknown = [m for m in metric_names if m not in metrics.NAMES]
  if unknown:
    raise ValueError(f"unknown metric(s) {', '.join(unknown)}; accepted: {', '.join(metrics.NAMES)}")
  extra = metrics.extra_scorers(metric_names, lpips_weights)
  os.makedirs(output_dir, exist_ok=True)
  summary, rows = {}, []
  for dataset in dataset_names:
    name = (datasets.source_name(dataset) if dataset.startswith("paired:")
            else os.path.basename(os.path.normpath(dataset)))
    for scale, upscale in upscalers.items():
      logging.info("Scoring %s on %s x%d (each new image size compiles the model first)", label, name, scale)
      skipped: list[str] = []
      pairs = iter_pairs(dataset, scale, data_dir, skipped, max_pixels=max_pixels, tfds_data_dir=tfds_data_dir,
                         tfds_manual_dir=tfds_manual_dir)
      analysis = None
      if heatmaps != "none" or sheets:
        analysis = error_maps.ErrorAnalysis(
            os.path.join(output_dir, "heatmaps", f"{name}_x{scale}"),
            os.path.join(output_dir, "sheets", f"{name}_x{scale}.png") if sheets else None,
            f"{label} on {name} x{scale}: patches of least and most gain over bicubic", scale, heatmaps=heatmaps)
      per_image = score_dataset(pairs, upscale, scale, analysis, extra, name)
      if not per_image:
        raise datasets.DataError(f"dataset {dataset!r}: no usable image at x{scale}"
                                 + (f" ({len(skipped)} skipped: {'; '.join(skipped[:3])})" if skipped else ""))
      result = {**eval_lib.summarize(per_image), "skipped": len(skipped)}
      summary.setdefault(name, {})[f"x{scale}"] = result
      rows += [{"dataset": name, "scale": scale, **r} for r in per_image]
      logging.info("%s x%d: PSNR %.3f SSIM %.4f (bicubic %.3f / %.4f) over %d images", name, scale,
                   result["psnr"], result["ssim"], result["bicubic_psnr"], result["bicubic_ssim"], len(per_image))
  write(output_dir, summary, rows, label)
  return summary


def write(output_dir: str, summary: dict, rows: list[dict], label: str) -> None:
  """The three result files, each atomically (an earlier evaluation's file stays whole until replaced)."""
  os.makedirs(output_dir, exist_ok=True)
  run_dir.write_json(os.path.join(output_dir, "summary.json"), summary)
  buf = io.StringIO(newline="")
  writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
  writer.writeheader()
  writer.writerows(rows)
  atomic.write_text(os.path.join(output_dir, "per_image.csv"), buf.getvalue())
  atomic.write_text(os.path.join(output_dir, "table.md"), markdown_table(summary, label) + "\n")
