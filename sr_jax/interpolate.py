r"""Network interpolation of two runs of the same architecture (ESRGAN §3.4; sr_jax/interpolation.py).

  python -m sr_jax.interpolate --a=runs/psnr --b=runs/gan --alpha=0.3 --workdir=runs/interp_0.3
  python -m sr_jax.interpolate --a=runs/psnr --b=runs/gan --alpha=0,0.2,0.4,0.6,0.8,1 --workdir=runs/interp \
      --evaluate=Set5,Set14,B100 --metrics=psnr,ssim,lpips,dists

The new workdir holds alpha * A + (1 - alpha) * B (1: A exactly, 0: B exactly) and is used like any other
(evaluate, upscale, export, train.init_from). With several alphas --workdir is a folder of one workdir per alpha
(alpha_0.20, ...); ``--evaluate`` scores each as ``sr_jax.evaluate`` does (into its eval/), prints the grid and
writes it to WORKDIR/interpolation.md; ``python -m experiments.report WORKDIR`` plots it. A run is a workdir
('best' checkpoint, its EMA weights when it kept them) or WORKDIR/checkpoints/STEP.
"""

from __future__ import annotations

import os

from absl import app, flags

from sr_jax import atomic, cli, datasets, eval_report, inference, interpolation, metrics, run_dir

flags.DEFINE_string("a", None, "Run A (workdir or WORKDIR/checkpoints/STEP): alpha = 1.")
flags.DEFINE_string("b", None, "Run B, same architecture and scale: alpha = 0.")
flags.DEFINE_list("alpha", ["0.5"], "Weight(s) of A in [0, 1]; several: one workdir each under --workdir.")
flags.DEFINE_string("workdir", None, "New workdir (one alpha) or folder of alpha_X workdirs (several).")
flags.DEFINE_list("evaluate", [], "Score each blend on these benchmark sets (as sr_jax.evaluate).")
flags.DEFINE_list("metrics", ["psnr", "ssim", "lpips"], "Metrics of that evaluation (psnr, ssim, lpips, dists, niqe).")
flags.DEFINE_string("data_dir", None, "Folder holding the benchmark sets (default: $SR_DATA_DIR).")
flags.DEFINE_bool("verbose", False, "Show the traceback of user errors (bad flags, files, workdirs) too.")
flags.mark_flags_as_required(["a", "b", "workdir"])
FLAGS = flags.FLAGS


def _alphas() -> list[float]:
  try:
    alphas = [float(a) for a in FLAGS.alpha]
  except ValueError:
    raise app.UsageError(f"--alpha={','.join(FLAGS.alpha)}: give numbers in [0, 1], e.g. --alpha=0,0.5,1") from None
  for a in alphas:
    interpolation.check_alpha(a)
  if len(set(alphas)) != len(alphas):
    raise app.UsageError(f"--alpha={','.join(FLAGS.alpha)} repeats a value")
  return alphas


def _grid_line(alpha: float, summary: dict) -> str:
  cells = [f"{alpha:.2f}"]
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
  targets = {a: FLAGS.workdir if single else os.path.join(FLAGS.workdir, interpolation.blend_dir(a)) for a in alphas}
  for wd in targets.values():
    run_dir.check_new_workdir(wd)
  lines, data_dir = [], FLAGS.data_dir or os.environ.get(datasets.DATA_ENV, "")
  for alpha, wd in targets.items():
    interpolation.write(wd, FLAGS.a, FLAGS.b, runs, alpha)
    print(f"alpha {alpha:.2f}: {alpha:g} x {FLAGS.a} + {1 - alpha:g} x {FLAGS.b} -> {wd}")
    if FLAGS.evaluate:
      run = run_dir.load_run(wd, "latest")
      up = {run.config.model.scale: inference.Upscaler(run.graphdef, run.params, run.config.model)}
      summary = eval_report.evaluate(up, list(FLAGS.evaluate), data_dir, os.path.join(wd, "eval"),
                                     label=f"alpha {alpha:.2f}", heatmaps="none", sheets=False,
                                     metric_names=tuple(FLAGS.metrics))
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
  cli.run(main)


if __name__ == "__main__":
  run()
