r"""Comparison report of a sweep root (or any folder of training workdirs).

  python -m experiments.report runs/loss_study [--out=runs/loss_study/report] [--data_dir=../shared/data]

Writes report.md and report.csv (one row per run: overrides, parameters, GFLOP per output pixel, steps, wall
time, PSNR/SSIM per dataset and scale with the gain over bicubic; from each run's eval/summary.json when
``launch --evaluate`` made one, else its last validation), psnr_vs_step.png, psnr_vs_time.png, and
grid.png: the same crops of a few Set14/B100 images across HR, bicubic and every run (needs --data_dir or
$SR_DATA_DIR).
"""

from __future__ import annotations

import csv
import json
import os

import matplotlib
from absl import app, flags

from experiments import common_flags
from sr_jax import color, eval_lib, image_io, imresize, inference, run_dir
from sr_jax.models import registry

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file-only backend)

flags.DEFINE_string("out", None, "Output folder (default ROOT/report).")
FLAGS = flags.FLAGS
GRID_IMAGES = ("Set14/zebra.png", "Set14/barbara.png", "B100/img_062.png")
_read = run_dir.read_json


def collect(root: str) -> list[dict]:
  """One dict per training workdir under ``root`` (sorted by name)."""
  runs = []
  for name in sorted(os.listdir(root)):
    wd = os.path.join(root, name)
    if not os.path.exists(os.path.join(wd, "config.json")):
      continue
    m = run_dir.load_config(wd).model
    launch = _read(os.path.join(wd, "launch.json")) if os.path.exists(os.path.join(wd, "launch.json")) else {}
    val = _read(os.path.join(wd, "validation.json")) if os.path.exists(os.path.join(wd, "validation.json")) \
        else {"history": []}
    hist = val["history"]
    summary = _read(os.path.join(wd, "eval", "summary.json")) if os.path.exists(
        os.path.join(wd, "eval", "summary.json")) else {
            k: {f"x{m.scale}": v} for k, v in (hist[-1]["sets"].items() if hist else [])}
    runs.append({
        "name": name, "workdir": wd, "overrides": launch.get("overrides", {}),
        "status": launch.get("status", "?"),
        "params": registry.count_params(m),
        "gflop_per_pixel": registry.flops_per_output_pixel(m) / 1e9,
        "steps": hist[-1]["step"] if hist else 0,
        "wall_time_s": launch.get("seconds") or (hist[-1].get("wall_time_s") if hist else None),
        "history": hist, "summary": summary})
  if not runs:
    raise FileNotFoundError(f"no training workdirs (with config.json) under {root}")
  return runs


def table(runs: list[dict]) -> tuple[list[str], list[list]]:
  cols = sorted({(d, s) for r in runs for d, per in r["summary"].items() for s in per})
  header = ["run", "status", "params", "MFLOP/px", "steps", "wall (min)"] + [
      f"{d} {s} PSNR / SSIM (gain)" for d, s in cols]
  rows = []
  for r in runs:
    row = [r["name"], r["status"], f"{r['params']:,}", f"{r['gflop_per_pixel'] * 1e3:.3f}", r["steps"],
           f"{r['wall_time_s'] / 60:.1f}" if r["wall_time_s"] else ""]
    for d, s in cols:
      v = r["summary"].get(d, {}).get(s)
      row.append(f"{v['psnr']:.2f} / {v['ssim']:.4f} ({v['psnr'] - v['bicubic_psnr']:+.2f})" if v else "")
    rows.append(row)
  return header, rows


def plots(runs: list[dict], out: str) -> list[str]:
  written = []
  for key, xlabel, fname in (("step", "step", "psnr_vs_step.png"), ("wall_time_s", "wall time (s)",
                                                                      "psnr_vs_time.png")):
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in runs:
      pts = [(h.get(key), next(iter(h["sets"].values()))["psnr"]) for h in r["history"] if h.get(key) is not None]
      if pts:
        ax.plot(*zip(*pts), marker="o", label=r["name"])
    bic = [next(iter(h["sets"].values()))["bicubic_psnr"] for r in runs for h in r["history"][:1]]
    if bic:
      ax.axhline(bic[0], color="gray", linestyle="--", label="bicubic")
    val_set = next((next(iter(h["sets"])) for r in runs for h in r["history"][:1]), "validation")
    ax.set(xlabel=xlabel, ylabel=f"{val_set} PSNR (dB, Y)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(out, fname), dpi=100)
    plt.close(fig)
    written.append(fname)
  return written


def grid(runs: list[dict], data_dir: str, out: str, crop: int = 64) -> str | None:
  """HR | bicubic | each run, on the centre crop of a few benchmark images."""
  paths = [os.path.join(data_dir, p) for p in GRID_IMAGES if os.path.exists(os.path.join(data_dir, p))]
  if not paths:
    return None
  models = []
  for r in runs:
    try:
      config, graphdef, params, _ = run_dir.load_run(r["workdir"], "best")
      models.append((r["name"], config.model.scale, inference.Upscaler(graphdef, params, config.model)))
    except (FileNotFoundError, ValueError):
      continue
  if not models:
    return None
  cols = 2 + len(models)
  fig, axes = plt.subplots(len(paths), cols, figsize=(2 * cols, 2.2 * len(paths)), squeeze=False)
  for i, path in enumerate(paths):
    pair = eval_lib.make_pair(os.path.basename(path), image_io.read_image(path), models[0][1])
    t, l = (pair.hr.shape[0] - crop) // 2, (pair.hr.shape[1] - crop) // 2
    panels = [("HR", pair.hr), ("bicubic", pair.bicubic)]
    panels += [(name, imresize.to_uint8(up(pair.lr))) for name, _, up in models]
    for j, (label, img) in enumerate(panels):
      axes[i, j].imshow(color.gray_to_rgb(img)[t:t + crop, l:l + crop], interpolation="nearest")
      axes[i, j].set_title(label if i == 0 else "", fontsize=7)
      axes[i, j].axis("off")
    axes[i, 0].text(0, -4, os.path.relpath(path, data_dir), fontsize=6)
  fig.tight_layout()
  fig.savefig(os.path.join(out, "grid.png"), dpi=100)
  plt.close(fig)
  return "grid.png"


def build(root: str, out: str | None = None, data_dir: str | None = None) -> str:
  out = out or os.path.join(root, "report")
  os.makedirs(out, exist_ok=True)
  runs = collect(root)
  header, rows = table(runs)
  with open(os.path.join(out, "report.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(header)
    w.writerows(rows)
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
  images = plots(runs, out)
  g = grid(runs, data_dir, out) if data_dir else None
  images += [g] if g else []
  md = "\n".join(lines) + "\n\n" + "\n".join(f"![{i}]({i})" for i in images) + "\n"
  with open(os.path.join(out, "report.md"), "w") as f:
    f.write(md)
  return out


def main(argv):
  if len(argv) != 2:
    raise app.UsageError("usage: python -m experiments.report ROOT")
  out = build(argv[1], FLAGS.out, common_flags.DATA_DIR.value or os.environ.get("SR_DATA_DIR"))
  with open(os.path.join(out, "report.md")) as f:
    print(f.read())
  print(f"Report in {out}/")


if __name__ == "__main__":
  app.run(main)
