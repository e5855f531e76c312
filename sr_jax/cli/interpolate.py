r"""Network interpolation of two runs of the same architecture (ESRGAN §3.4; sr_jax/inference/interpolation.py).

  python -m sr_jax.cli.interpolate --a=runs/psnr --b=runs/gan --alpha=0.3 --workdir=runs/interp_0.3
  python -m sr_jax.cli.interpolate --a=runs/psnr --b=runs/gan --alpha=0,0.2,0.4,0.6,0.8,1 --workdir=runs/interp \
      --evaluate=Set5,Set14,B100 --metrics=psnr,ssim,lpips,dists

The new workdir holds alpha * A + (1 - alpha) * B (1: A exactly, 0: B exactly) and is used like any other
(evaluate, upscale, export, train.init_from). With several alphas --workdir is a folder of one workdir per alpha
(alpha_0.20, ...); ``--evaluate`` scores each as ``sr_jax.cli.evaluate`` does (into its eval/), prints the grid and
writes it to WORKDIR/interpolation.md; ``python -m experiments.report WORKDIR`` plots it. A run is a workdir
('best' checkpoint, its EMA weights when it kept them) or WORKDIR/checkpoints/STEP.
"""

from __future__ import annotations

import os

from absl import app, flags

from sr_jax import cli, metrics
from sr_jax.core import atomic
from sr_jax.data import datasets
from sr_jax.evaluation import eval_report
from sr_jax.inference import interpolation, upscaler
from sr_jax.workdir import run_dir

flags.DEFINE_string("a", None, "Run A (workdir or WORKDIR/checkpoints/STEP): alpha = 1.")
flags.DEFINE_string("b", None, "Run B, same architecture and scale: alpha = 0.")
flags.DEFINE_list("alpha", ["0.5"], "Weight(s) of A in [0, 1]; several: one workdir each under --workdir.")
flags.DEFINE_string("workdir", None, "New workdir (one alpha) or folder of alpha_X workdirs (several).")
flags.DEFINE_list("evaluate", [], "Score each blend on these benchmark sets (as sr_jax.cli.evaluate).")
flags.DEFINE_list("metrics", ["psnr", "ssim", "lpips"], "Metrics of that evaluation (psnr, ssim, lpips, dists, niqe).")
flags.DEFINE_string("data_dir", None, "Folder holding the benchmark sets (default: $SR_DATA_DIR).")
flags.DEFINE_bool("verbose", False, "Show the traceback of user errors (bad flags, files, workdirs) too.")
flags.mark_flags_as_required(["a", "b", "workdir"])
FLAGS = flags.FLAGS


def _alphas() -> list[float]:
  try:
    alphas = [float(a) + 0.0 for a in FLAGS.alpha]  # + 0.0: -0 is 0.
  except ValueError:
    raise app.UsageError(f"--alpha={','.join(FLAGS.alpha)}: give numbers in [0, 1], e.g. --alpha=0,0.5,1") from None
  for a in alphas:
    interpolation.check_alpha(a)
  if len(set(alphas)) != len(alphas):
    raise app.UsageError(f"--alpha={','.join(FLAGS.alpha)} repeats a value")
  return alphas


def _check_grid_folder(folder: str) -> None:
  """The folder of several blends: new, empty, or one an earlier sr-interpolate wrote (blend folders and the grid
  table only); anything else in it is the user's and is refused (``run_dir.check_new_workdir``'s rule)."""
  if os.path.lexists(folder) and not os.path.isdir(folder):
    raise NotADirectoryError(f"--workdir {folder} is a file, not a folder")
  others = sorted(n for n in (os.listdir(folder) if os.path.isdir(folder) else [])
                  if interpolation.blend_alpha(n) is None and n != interpolation.GRID_TABLE)
  if others:
    raise run_dir.WorkdirNotNewError(
        f"--workdir {folder} holds {', '.join(others[:4])}{' ...' if len(others) > 4 else ''}, which sr-interpolate "
        "did not write; several blends go into a new or empty folder (or one an earlier sr-interpolate wrote): "
        "give another --workdir")


def _evaluated(wd: str, sets: list[str], metric_names: list[str]) -> dict | None:
  """The evaluation an earlier (stopped) run of this command left in WD/eval, if it scored these sets and
  metrics; else None."""
  try:
    summary = run_dir.read_json(os.path.join(wd, "eval", "summary.json"))
  except (OSError, ValueError):
    return None
  if list(summary) != list(sets) or any(m not in r for per in summary.values() for r in per.values()
                                         for m in ("psnr", "ssim", *metric_names)):
    return None
  return summary


def _grid_line(alpha: float, summary: dict) -> str:
  cells = [interpolation.alpha_label(alpha)]
  for per_scale in summary.values():
    for r in per_scale.values():
      cells.append(" / ".join(metrics.REGISTRY[m].fmt.format(r[m]) for m in metrics.NAMES if m in r))
  return "| " + " | ".join(cells) + " |"


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  alphas = _alphas()
  bad = [m for m in FLAGS.metrics if m not in metrics.NAMES]
  if bad:
    raise app.UsageError(f"--metrics: unknown {', '.join(bad)}; accepted: {', '.join(metrics.NAMES)}")
  runs = interpolation.load_pair(FLAGS.a, FLAGS.b)
  single = len(alphas) == 1
  names = [interpolation.blend_dir(a) for a in alphas]
  if len(set(names)) != len(names):
    raise app.UsageError(f"--alpha={','.join(FLAGS.alpha)} gives two blends one name ({names})")
  if not single:
    _check_grid_folder(FLAGS.workdir)
  targets = {a: FLAGS.workdir if single else os.path.join(FLAGS.workdir, n) for a, n in zip(alphas, names)}
  for alpha, wd in targets.items():  # All refused before any is written.
    if not interpolation.written(wd, FLAGS.a, FLAGS.b, runs, alpha):
      run_dir.check_new_workdir(wd)
  lines, data_dir = [], FLAGS.data_dir or os.environ.get(datasets.DATA_ENV, "")
  for alpha, wd in targets.items():
    label = interpolation.alpha_label(alpha)
    new = interpolation.write(wd, FLAGS.a, FLAGS.b, runs, alpha)
    print(f"alpha {label}: {alpha:g} x {FLAGS.a} + {1 - alpha:g} x {FLAGS.b} -> {wd}"
          + ("" if new else " (written by an earlier run of this command; kept)"))
    if FLAGS.evaluate:
      summary = _evaluated(wd, list(FLAGS.evaluate), list(FLAGS.metrics))
      if summary is None:
        run = run_dir.load_run(wd, "latest")
        up = {run.config.model.scale: upscaler.Upscaler(run.graphdef, run.params, run.config.model)}
        summary = eval_report.evaluate(up, list(FLAGS.evaluate), data_dir, os.path.join(wd, "eval"),
                                       label=f"alpha {label}", heatmaps="none", sheets=False,
                                       metric_names=tuple(FLAGS.metrics))
      else:
        print(f"alpha {label}: scored by an earlier run of this command ({os.path.join(wd, 'eval')}); kept")
      lines.append(_grid_line(alpha, summary))
  if lines:
    sets = ", ".join(f"{d} {s}" for d, per in summary.items() for s in per)
    names = " / ".join(m.upper() for m in metrics.NAMES if m in ("psnr", "ssim", *FLAGS.metrics))
    table = "\n".join([f"A = {FLAGS.a}, B = {FLAGS.b}; per set ({sets}): {names}", "",
                       "| alpha | " + " | ".join(f"{d} {s}" for d, per in summary.items() for s in per) + " |",
                       "|---|" + "---|" * sum(len(per) for per in summary.values())] + lines)
    print(table)
    if not single:
      atomic.write_text(os.path.join(FLAGS.workdir, interpolation.GRID_TABLE), table + "\n")


def run() -> None:
  """Console script ``sr-interpolate``."""
  cli.run(main, interrupted="the blends and evaluations finished so far are kept; run the same command to do "
                            "the rest")


if __name__ == "__main__":
  run()
