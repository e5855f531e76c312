r"""Comparison report of a sweep root (or any folder of training workdirs).

  python -m experiments.report runs/loss_study_x4 [--out=runs/loss_study_x4/report] [--data_dir=../shared/data]

Writes, from each run's eval/summary.json (``launch --evaluate``; else its last validation):
- report.md: per set and scale, one row per run (named by the sweep's labels) and bicubic: PSNR, SSIM and,
  when evaluated, LPIPS and NIQE; then per recipe (runs that differ only in seed) the mean and the range over
  seeds.
- report.csv: the same, machine-readable: one row per run (and bicubic), one numeric value per cell, columns
  ``<set>_x<scale>_<metric>`` with sets in a fixed order (Set5, Set14, B100, Urban100, Manga109, then others).
- psnr_vs_step.png, psnr_vs_time.png: validation curves; perception_distortion.png (when LPIPS was scored):
  PSNR against LPIPS per set, one point per run, seeds marked (Blau & Michaeli, CVPR 2018).
- grid.png (needs --data_dir or $SR_DATA_DIR): HR, bicubic and one run per recipe on the crops of Set14/B100
  where the recipes' outputs differ most (textured patches), each crop labelled with its LPIPS and PSNR.
"""

from __future__ import annotations

import csv
import io
import os
import re

import matplotlib
import numpy as np
from absl import app, flags

from experiments import common_flags
from sr_jax import cli, metrics
from sr_jax.core import atomic
from sr_jax.data import datasets
from sr_jax.evaluation import eval_lib
from sr_jax.image import color
from sr_jax.inference import interpolation, upscaler
from sr_jax.metrics import lpips
from sr_jax.models import registry
from sr_jax.training import config_lib
from sr_jax.workdir import run_dir

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file-only backend)

flags.DEFINE_string("out", None, "Output folder (default ROOT/report).")
FLAGS = flags.FLAGS
flags.adopt_module_key_flags(common_flags)  # --data_dir is this program's too (--help lists it).
SET_ORDER = ("Set5", "Set14", "B100", "Urban100", "Manga109", "DIV2K")
METRICS = metrics.NAMES
FORMATS = {m: metrics.REGISTRY[m].fmt for m in METRICS}
GRID_SETS = ("Set14", "B100")
_read = run_dir.read_json


def _optional_json(path: str, default, notes: list[str]):
  """The JSON at ``path``; ``default`` when it is missing, or damaged (truncated, garbage: said in ``notes``)."""
  if not os.path.exists(path):
    return default
  try:
    return _read(path)
  except (OSError, ValueError) as e:
    notes.append(f"{path} is unreadable ({type(e).__name__}: {e}); the report goes on without it")
    return default


def _entry(wd: str, name: str, notes: list[str]) -> dict:
  """One run's row: its config, launch status, validation history and evaluation summary (a damaged file is left
  out and said in ``notes``)."""
  config = config_lib.saved_config(wd)
  launch = _optional_json(os.path.join(wd, "launch.json"), {}, notes)
  hist = _optional_json(os.path.join(wd, "validation.json"), {"history": []}, notes).get("history", [])
  summary = _optional_json(os.path.join(wd, "eval", "summary.json"), None, notes) or {
      k: {f"x{config.model.scale}": v} for k, v in (hist[-1]["sets"].items() if hist else [])}
  label = launch.get("label", name)
  return {
      "name": name, "workdir": wd, "label": label, "index": launch.get("index", 1 << 30),
      "recipe": re.sub(r", seed \d+$", "", label), "alpha": None,
      "seed": config.seed, "status": launch.get("status", "?"),
      "params": registry.count_params(config.model),
      "gflop_per_pixel": registry.flops_per_output_pixel(config.model) / 1e9,
      "steps": hist[-1]["step"] if hist else 0,
      "wall_time_s": launch.get("seconds") or (hist[-1].get("wall_time_s") if hist else None),
      "history": hist, "summary": summary}


def _interpolations(folder: str, name: str, notes: list[str]) -> list[dict]:
  """The alpha_X workdirs of an ``sr_jax.cli.interpolate`` grid folder (it holds interpolation.md), one recipe."""
  runs = []
  for sub in sorted(os.listdir(folder)):
    wd = os.path.join(folder, sub)
    alpha = interpolation.blend_alpha(sub)
    if alpha is not None and os.path.exists(os.path.join(wd, "config.json")):
      r = _entry(wd, f"{name}/{sub}", notes)
      r.update(alpha=alpha, label=f"{name}, alpha {alpha:.2f}", recipe=f"{name} (interpolation)", status="done",
               steps=None)  # A blend of two checkpoints: it trained no steps of its own.
      runs.append(r)
  return runs


def collect(root: str, notes: list[str] | None = None) -> list[dict]:
  """One dict per training workdir under ``root``, in the sweep file's order (launch.json), else by name; an
  interpolation grid folder (``sr_jax.cli.interpolate``, with interpolation.md) adds its blends, after the runs. A
  member whose config.json is unreadable is left out, and any damaged file is said in ``notes``."""
  runs, notes = [], [] if notes is None else notes
  for name in sorted(os.listdir(root)):
    wd = os.path.join(root, name)
    if os.path.exists(os.path.join(wd, "config.json")):
      try:
        runs.append(_entry(wd, name, notes))
      except (OSError, ValueError) as e:  # config.json itself damaged.
        notes.append(f"{name} is left out: {wd}/config.json is unreadable ({type(e).__name__}: {e})")
    elif os.path.exists(os.path.join(wd, interpolation.GRID_TABLE)):
      runs.extend(_interpolations(wd, name, notes))
  if not runs:
    raise FileNotFoundError(f"no training workdirs (with config.json) under {root}")
  return sorted(runs, key=lambda r: (r["index"], r["alpha"] is not None, r["name"]))  # Sweep order, then by name.


def _set_key(name: str) -> tuple:
  return (SET_ORDER.index(name) if name in SET_ORDER else len(SET_ORDER), name)


def columns(runs: list[dict]) -> tuple[list[tuple[str, str]], list[str]]:
  """((set, 'xS') in the fixed set order, metrics present in any run)."""
  cols = sorted({(d, s) for r in runs for d, per in r["summary"].items() for s in per},
                key=lambda c: (_set_key(c[0]), c[1]))
  present = [m for m in METRICS if any(m in v for r in runs for per in r["summary"].values() for v in per.values())]
  return cols, present


def _value(run: dict | None, d: str, s: str, m: str, runs: list[dict]) -> float | None:
  """Metric ``m`` of ``run`` on (d, s); ``run`` None: bicubic's (the same in every run's summary)."""
  for r in ([run] if run else runs):
    v = r["summary"].get(d, {}).get(s, {}).get(m if run else f"bicubic_{m}")
    if v is not None:
      return float(v)
  return None


def csv_table(runs: list[dict]) -> tuple[list[str], list[list]]:
  cols, present = columns(runs)
  header = ["run", "label", "seed", "status", "params", "mflop_per_pixel", "steps", "wall_min"] + [
      f"{d}_{s}_{m}" for d, s in cols for m in present]
  rows = [["bicubic", "bicubic", "", "", "", "", "", ""] + [_value(None, d, s, m, runs) for d, s in cols
                                                            for m in present]]
  for r in runs:
    rows.append([r["name"], r["label"], r["seed"], r["status"], r["params"], round(r["gflop_per_pixel"] * 1e3, 4),
                 r["steps"], round(r["wall_time_s"] / 60, 2) if r["wall_time_s"] else None]
                + [_value(r, d, s, m, runs) for d, s in cols for m in present])
  return header, [["" if c is None else c for c in row] for row in rows]


def _fmt(m: str, v: float | None) -> str:
  return "" if v is None or not np.isfinite(v) else FORMATS[m].format(v)


def _md(header: list[str], rows: list[list]) -> list[str]:
  return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + [
      "| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def markdown(runs: list[dict]) -> str:
  """Per set and scale: every run and bicubic; then per recipe: mean and range over seeds."""
  cols, present = columns(runs)
  arrows = {m: metrics.REGISTRY[m].arrow for m in present}
  out = []
  for d, s in cols:
    rows = [["bicubic", "", ""] + [_fmt(m, _value(None, d, s, m, runs)) for m in present]]
    rows += [[r["label"] + ("" if r["status"] in ("done", "?") else f" ({r['status']})"),
              "" if r["steps"] is None else r["steps"],
              f"{r['wall_time_s'] / 60:.1f}" if r["wall_time_s"] else ""]
             + [_fmt(m, _value(r, d, s, m, runs)) for m in present] for r in runs]
    out += [f"### {d} {s}", ""] + _md(["run", "steps", "wall (min)"] + [arrows[m] for m in present], rows) + [""]
  recipes = list(dict.fromkeys(r["recipe"] for r in runs))
  header = ["recipe", "seeds"] + [f"{d} {s} {arrows[m]}" for d, s in cols for m in present]
  rows = []
  for rec in recipes:  # Finished runs only: an unfinished one's last validation is not its result.
    members = [r for r in runs if r["recipe"] == rec and r["status"] in ("done", "?") and r["alpha"] is None]
    if not members:
      continue
    cells = []
    for d, s in cols:
      for m in present:
        vals = [v for v in (_value(r, d, s, m, runs) for r in members) if v is not None]
        cells.append("" if not vals else _fmt(m, np.mean(vals)) + (
            f" ±{_fmt(m, (max(vals) - min(vals)) / 2)}" if len(vals) > 1 else ""))
    rows.append([rec, ",".join(str(r["seed"]) for r in members)] + cells)
  out += ["### Per recipe (finished runs): mean over seeds ± half their range", ""] + _md(header, rows) + [""]
  return "\n".join(out)


def curve_plots(runs: list[dict], out: str) -> list[str]:
  written = []
  for key, xlabel, fname in (("step", "step", "psnr_vs_step.png"), ("wall_time_s", "wall time (s)",
                                                                      "psnr_vs_time.png")):
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in runs:
      pts = [(h.get(key), next(iter(h["sets"].values()))["psnr"]) for h in r["history"] if h.get(key) is not None]
      if pts:
        ax.plot(*zip(*pts), marker="o", label=r["label"])
    bic = [next(iter(h["sets"].values()))["bicubic_psnr"] for r in runs for h in r["history"][:1]]
    if bic:
      ax.axhline(bic[0], color="gray", linestyle="--", label="bicubic")
    val_set = next((next(iter(h["sets"])) for r in runs for h in r["history"][:1]), "validation")
    ax.set(xlabel=xlabel, ylabel=f"{val_set} PSNR (dB, Y), validation")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(out, fname), dpi=100)
    plt.close(fig)
    written.append(fname)
  return written


def perception_distortion(runs: list[dict], out: str) -> str | None:
  """PSNR (x) against LPIPS (y) per set: one point per run, a marker per recipe, seeds written beside."""
  cols, present = columns(runs)
  if "lpips" not in present:
    return None
  fig, axes = plt.subplots(1, len(cols), figsize=(4.2 * len(cols), 4), squeeze=False)
  recipes = list(dict.fromkeys(r["recipe"] for r in runs))
  markers = "osD^vP*<>ph"  # Not 'x'/'X': bicubic's.
  for ax, (d, s) in zip(axes[0], cols):
    for i, rec in enumerate(recipes):
      members = [r for r in runs if r["recipe"] == rec]
      curve = members[0]["alpha"] is not None  # An interpolation: a line through the blends, by alpha.
      tag = lambda r: f"α{r['alpha']:g}" if curve else f"s{r['seed']}"
      pts = [(_value(r, d, s, "psnr", runs), _value(r, d, s, "lpips", runs), tag(r))
             for r in sorted(members, key=lambda r: r["alpha"] or 0)]
      pts = [p for p in pts if p[0] is not None and p[1] is not None]
      if pts:
        draw = ax.plot if curve else ax.scatter
        draw([p[0] for p in pts], [p[1] for p in pts], *(["-", ] if curve else []),
             marker=markers[i % len(markers)], label=rec, **({"ms": 4} if curve else {"s": 40}))
        for x, y, tag in pts:
          ax.annotate(tag, (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
    bx, by = _value(None, d, s, "psnr", runs), _value(None, d, s, "lpips", runs)
    if bx is not None and by is not None:
      ax.scatter([bx], [by], marker="x", color="black", label="bicubic")  # Black: outside the recipes' colours.
    ax.set(title=f"{d} {s}", xlabel="PSNR (dB, Y) → better", ylabel="LPIPS (AlexNet) ↓ better")
    ax.grid(alpha=0.3)
  axes[0][0].legend(fontsize=7)
  fig.suptitle("Perception–distortion: lower-right is better on both", fontsize=9)
  fig.tight_layout()
  fig.savefig(os.path.join(out, "perception_distortion.png"), dpi=100)
  plt.close(fig)
  return "perception_distortion.png"


def _disagreement(outputs: list[np.ndarray], hr: np.ndarray, crop: int, min_std: float = 12.0
                  ) -> tuple[float, int, int]:
  """(score, top, left) of the textured crop where the outputs' Y differ most (mean std across outputs, which
  include bicubic's), away from the image border (where padding, not the loss, makes models differ)."""
  ys = np.stack([color.rgb_to_y(color.gray_to_rgb(o)) for o in outputs])
  spread, ref = ys.std(axis=0), color.rgb_to_y(color.gray_to_rgb(hr))
  best, margin = (-1.0, 0, 0), crop // 4
  for top in range(margin, hr.shape[0] - crop - margin + 1, crop // 2):
    for left in range(margin, hr.shape[1] - crop - margin + 1, crop // 2):
      if ref[top:top + crop, left:left + crop].std() >= min_std:
        best = max(best, (float(spread[top:top + crop, left:left + crop].mean()), top, left))
  return best


def _grid_models(runs: list[dict]) -> list[tuple[str, int, upscaler.Upscaler]]:
  """One run per recipe (its lowest seed), at the step its evaluation scored."""
  models, seen = [], set()
  for r in sorted(runs, key=lambda r: r["seed"]):
    if r["recipe"] in seen or r["alpha"] is not None:  # Blends: on the curve, not in the grid.
      continue
    try:
      run = run_dir.load_run(r["workdir"], "latest")
    except (FileNotFoundError, ValueError):
      continue
    seen.add(r["recipe"])
    models.append((r["recipe"], run.config.model.scale, upscaler.Upscaler(run.graphdef, run.params,
                                                                           run.config.model)))
  order = {}
  for i, r in enumerate(runs):  # A recipe's place: its first run's.
    order.setdefault(r["recipe"], i)
  return sorted(models, key=lambda m: order[m[0]])


def grid(runs: list[dict], data_dir: str, out: str, rows: int = 4,
         max_images: int = 0) -> tuple[str, list[str]] | None:
  """HR | bicubic | one run per recipe, on the crops where the recipes differ most (searched in the first
  ``max_images`` images of each GRID_SETS set; 0: all). Returns the image's name and the recipes it leaves out
  because none of their workdirs holds a checkpoint (records copied from an archive)."""
  models = _grid_models(runs)
  if not models:
    return None
  drawn = {m[0] for m in models}
  left_out = [r for r in dict.fromkeys(r["recipe"] for r in runs if r["alpha"] is None) if r not in drawn]
  scale = models[0][1]
  crop = 16 * scale
  candidates = []
  for set_name in GRID_SETS:
    folder = os.path.join(data_dir, set_name)
    if not os.path.isdir(folder):
      continue
    images = datasets.load_source(f"folder:{folder}", keep_gray=True, min_size=crop)
    for i in range(len(images) if max_images <= 0 else min(max_images, len(images))):
      pair = eval_lib.make_pair(images.names[i], images.get(i), scale)
      outs = [eval_lib.upscale_uint8(up, pair) for _, _, up in models]
      score, top, left = _disagreement(outs + [pair.bicubic], pair.hr, crop)
      if score >= 0:
        candidates.append((score, f"{set_name}/{pair.name}", pair, outs, top, left))
  if not candidates:
    return None
  chosen = sorted(candidates, key=lambda c: -c[0])[:rows]
  try:
    lpips.check_weights("alex")
    score_lpips = lpips.scorer("alex")
  except lpips.LPIPSWeightsError as e:  # Optional: the grid shows PSNR alone and says how to add LPIPS.
    print(f"report: LPIPS left out of grid.png ({e})")
    score_lpips = None
  cols = 2 + len(models)
  fig, axes = plt.subplots(len(chosen), cols, figsize=(1.9 * cols, 2.2 * len(chosen)), squeeze=False)
  for i, (_, name, pair, outs, top, left) in enumerate(chosen):
    cut = lambda x: color.gray_to_rgb(x)[top:top + crop, left:left + crop]
    hr = cut(pair.hr)
    panels = [("HR", hr, None)] + [(label, cut(img), img) for label, img in
                                   [("bicubic", pair.bicubic)] + [(m[0], o) for m, o in zip(models, outs)]]
    for j, (label, img, full) in enumerate(panels):
      ax = axes[i, j]
      ax.imshow(img, interpolation="nearest")
      text = f"{name} ({top},{left})" if full is None else (
          (f"LPIPS {score_lpips(img, hr):.3f} / " if score_lpips else "") + f"{metrics.psnr(img, hr, shave=0):.2f} dB")
      ax.set_title(("" if i else label + "\n") + text, fontsize=6)
      ax.axis("off")
  fig.suptitle(f"x{scale} crops ({crop}x{crop} HR px) where the recipes differ most; "
               + ("LPIPS (AlexNet) / " if score_lpips else "") + "PSNR (Y) of each crop", fontsize=8)
  fig.tight_layout()
  fig.savefig(os.path.join(out, "grid.png"), dpi=110)
  plt.close(fig)
  return "grid.png", left_out


def build(root: str, out: str | None = None, data_dir: str | None = None, grid_images: int = 0) -> str:
  out = out or os.path.join(root, "report")
  os.makedirs(out, exist_ok=True)
  notes: list[str] = []
  runs = collect(root, notes)
  header, rows = csv_table(runs)
  buf = io.StringIO(newline="")
  w = csv.writer(buf)
  w.writerow(header)
  w.writerows(rows)
  atomic.write_text(os.path.join(out, "report.csv"), buf.getvalue())
  images = curve_plots(runs, out)
  images += [p for p in [perception_distortion(runs, out)] if p]
  grid_out = grid(runs, data_dir, out, max_images=grid_images) if data_dir else None
  images += [grid_out[0]] if grid_out else []
  md = markdown(runs) + "\n" + "\n".join(f"![{i}]({i})" for i in images) + "\n"
  if grid_out and grid_out[1]:  # main() prints report.md, so the console says it too.
    md += f"\n{grid_out[0]} leaves out {', '.join(grid_out[1])}: no checkpoint in their workdirs.\n"
  if notes:  # Damaged files: the console and report.md both say what the tables lack.
    md += "\nDamaged files:\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"
  atomic.write_text(os.path.join(out, "report.md"), md)
  return out


def main(argv):
  if len(argv) != 2:
    raise app.UsageError("usage: python -m experiments.report ROOT")
  out = build(argv[1], FLAGS.out, common_flags.DATA_DIR.value or os.environ.get("SR_DATA_DIR"))
  with open(os.path.join(out, "report.md")) as f:
    print(f.read())
  print(f"Report in {out}/")


if __name__ == "__main__":
  cli.run(main)
