r"""The architecture study's table and plots: accuracy against cost, one row per architecture.

  python -m experiments.arch_report runs/arch_study_x4 --bench=experiments/results/arch_bench_2026-12-02.jsonl \
      --out=experiments/results/arch_study_x4

Reads the runs as experiments.report does (each run's eval/summary.json) and the architecture benchmark's JSON
lines (experiments/benchmarks/arch_bench.py: each model measured alone on this CPU). Writes arch_report.md: per
architecture, the mean over its finished seeds ± half their range of PSNR / SSIM / LPIPS on every evaluated set,
parameters, MFLOPs per output pixel (registry), train patches/s and inference output MP/s (benchmark), the
training time those imply (steps x train step: the time axis, free of what else the machine was doing) and the
measured wall time of the runs; psnr_vs_flops.png and psnr_vs_time.png, one point per architecture and set,
the seed range as an error bar.
"""

from __future__ import annotations

import functools
import json
import os

import matplotlib
import numpy as np
from absl import app, flags

from experiments import report
from sr_jax import cli
from sr_jax.core import atomic
from sr_jax.core.errors import DataError
from sr_jax.training import config_lib
from sr_jax.workdir import run_dir

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file-only backend)

flags.DEFINE_string("bench", None, "arch_bench JSON lines (train step, inference MP/s per model).")
FLAGS = flags.FLAGS  # --out (output folder, default ROOT/report) is experiments.report's.


def _groups(runs: list[dict]) -> dict[str, list[dict]]:
  """{recipe: its finished runs}, in the runs' order."""
  out: dict[str, list[dict]] = {}
  for r in runs:
    if r["status"] == "done" and r["alpha"] is None:
      out.setdefault(r["recipe"], []).append(r)
  return out


def _stat(members: list[dict], d: str, s: str, m: str, runs: list[dict]) -> tuple[float, float] | None:
  vals = [v for v in (report._value(r, d, s, m, runs) for r in members) if v is not None]
  return (float(np.mean(vals)), (max(vals) - min(vals)) / 2) if vals else None


def table(runs: list[dict], bench: dict[str, dict]) -> tuple[str, list[dict]]:
  cols, _ = report.columns(runs)
  rows, lines = [], []
  head = ["architecture", "seeds", "params", "MFLOP/px", "train patches/s", "infer MP/s", "train min (bench)",
          "wall min (runs)"] + [f"{d} {s} PSNR / SSIM / LPIPS" for d, s in cols]
  for recipe, members in _groups(runs).items():
    name = run_dir_model(members[0])
    b = bench.get(name, {})
    steps = members[0]["steps"]
    row = {"recipe": recipe, "model": name, "gflop": members[0]["gflop_per_pixel"],
           "train_min": steps * b["train_step_s"] / 60 if b and steps is not None else None}
    cells = [recipe, ",".join(str(r["seed"]) for r in members), f"{members[0]['params']:,}",
             f"{members[0]['gflop_per_pixel'] * 1e3:.3f}", f"{b.get('train_patches_per_s', float('nan')):.1f}",
             f"{b.get('infer_output_mp_per_s', float('nan')):.2f}",
             f"{row['train_min']:.1f}" if row["train_min"] else "",
             "/".join(f"{r['wall_time_s'] / 60:.0f}" for r in members if r["wall_time_s"])]
    for d, s in cols:
      stats = {m: _stat(members, d, s, m, runs) for m in ("psnr", "ssim", "lpips")}
      row[(d, s)] = stats["psnr"]
      spread = lambda m, f: "" if stats[m] is None or len(members) < 2 else f" ±{f.format(stats[m][1])}"
      cells.append(" / ".join("" if stats[m] is None else f.format(stats[m][0]) + spread(m, f)
                              for m, f in (("psnr", "{:.2f}"), ("ssim", "{:.4f}"), ("lpips", "{:.3f}"))))
    rows.append(row)
    lines.append("| " + " | ".join(cells) + " |")
  bic = ["bicubic", "", "", "", "", "", "", ""] + [
      " / ".join(f.format(v) if (v := report._value(None, d, s, m, runs)) is not None else ""
                 for m, f in (("psnr", "{:.2f}"), ("ssim", "{:.4f}"), ("lpips", "{:.3f}"))) for d, s in cols]
  md = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), "| " + " | ".join(bic) + " |"] + lines
  return "\n".join(md), rows


def run_dir_model(run: dict) -> str:
  return run_dir.load_config(run["workdir"]).model.name


RECIPE_KEYS = ("train.learning_rate", "train.lr_schedule", "train.warmup_steps", "train.grad_clip",
               "train.num_steps", "train.batch_size", "data.patch_size", "loss.l1")


def recipe_notes(runs: list[dict]) -> list[str]:
  """One line per architecture whose training recipe differs from the one most architectures share."""
  values = {}
  for recipe, members in _groups(runs).items():
    config = config_lib.saved_config(members[0]["workdir"])
    values[recipe] = {k: functools.reduce(getattr, k.split("."), config) for k in RECIPE_KEYS}
  notes = []
  for key in RECIPE_KEYS:
    column = [v[key] for v in values.values()]
    common = max(column, key=column.count)  # Ties: the first architecture's.
    notes += [f"- {recipe}: {key}={v[key]} (the others: {common})" for recipe, v in values.items() if v[key] != common]
  return notes


def plots(runs: list[dict], rows: list[dict], out: str) -> list[str]:
  cols, _ = report.columns(runs)
  written = []
  for key, fname, xlabel in (("gflop", "psnr_vs_flops.png", "MFLOPs per output pixel (registry)"),
                             ("train_min", "psnr_vs_time.png", "training time (min: steps x benchmark step)")):
    fig, axes = plt.subplots(1, len(cols), figsize=(4.2 * len(cols), 3.8), squeeze=False)
    for ax, c in zip(axes[0], cols):
      for i, row in enumerate(rows):
        if row.get(c) is None or row[key] is None:
          continue
        x = row[key] * (1e3 if key == "gflop" else 1)
        ax.errorbar([x], [row[c][0]], yerr=[row[c][1]], fmt="osD^vP*X"[i % 8], capsize=3, label=row["recipe"])
      bic = report._value(None, c[0], c[1], "psnr", runs)
      if bic is not None:
        ax.axhline(bic, color="gray", ls=":", lw=1, label="bicubic")
      ax.set(title=f"{c[0]} {c[1]}", xlabel=xlabel, ylabel="PSNR (dB, Y)")
      ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(os.path.join(out, fname), dpi=100)
    plt.close(fig)
    written.append(fname)
  return written


def main(argv):
  if len(argv) != 2:
    raise app.UsageError("usage: python -m experiments.arch_report ROOT --bench=FILE [--out=DIR]")
  damaged: list[str] = []
  runs = report.collect(argv[1], damaged)
  bench = {}
  if FLAGS.bench:
    with open(FLAGS.bench) as f:
      try:
        bench = {b["model"]: b for b in map(json.loads, filter(str.strip, f))}
      except (ValueError, KeyError, TypeError) as e:
        raise DataError(f"--bench={FLAGS.bench}: not JSON lines with a 'model' key ({type(e).__name__}: {e})") from e
  out = FLAGS.out or os.path.join(argv[1], "report")
  os.makedirs(out, exist_ok=True)
  md, rows = table(runs, bench)
  notes = recipe_notes(runs)
  if notes:
    md += "\n\nRecipe differences (each run's config.json):\n" + "\n".join(notes)
  if damaged:
    md += "\n\nDamaged files:\n\n" + "\n".join(f"- {n}" for n in damaged)
  atomic.write_text(os.path.join(out, "arch_report.md"), md + "\n")
  print(md)
  print("wrote", ", ".join(["arch_report.md"] + plots(runs, rows, out)), "in", out)


if __name__ == "__main__":
  cli.run(main)
