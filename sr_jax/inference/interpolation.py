"""Network interpolation (Wang et al., ESRGAN, ECCV 2018 workshops, §3.4): the parameters
alpha * theta_A + (1 - alpha) * theta_B of two runs of the same architecture, e.g. a PSNR-oriented (L1) run and a
GAN run fine-tuned from it, trace the perception-distortion curve without training (Real-ESRGAN's
``--denoise_strength`` blends two models the same way).

Each run is read as ``evaluate`` reads it (``run_dir.load_run``: 'best' unless ``WORKDIR/checkpoints/STEP`` names
a step; the EMA weights when the run kept them). The two must have the same model fields (architecture, scale
and every hyper-parameter) and the same parameter shapes. alpha = 1 gives A exactly, alpha = 0 gives B exactly.
The new workdir holds A's config with the EMA, discriminator and EMA-reading losses switched off (its one
checkpoint holds only the blend) and a step-0 checkpoint whose metadata names both sources and alpha.
"""

from __future__ import annotations

import os
import re

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from sr_jax.core.errors import UserError
from sr_jax.workdir import checkpoint_io, run_dir

RUNTIME_FIELDS = ("dtype", "conv_impl")  # How a model computes, not what it is.
GRID_TABLE = "interpolation.md"  # A grid folder (several alphas) holds this table and one blend_dir per alpha.


def alpha_label(alpha: float) -> str:
  """alpha as written in folder names and tables: two decimals when they are exact (0.50), else every digit it
  takes (0.501), so two alphas never share a name; -0 is 0."""
  alpha = float(alpha) + 0.0
  two = f"{alpha:.2f}"
  return two if float(two) == alpha else np.format_float_positional(alpha, trim="-")


def blend_dir(alpha: float) -> str:
  return f"alpha_{alpha_label(alpha)}"


def blend_alpha(name: str) -> float | None:
  """The alpha of a grid's blend folder name (``blend_dir``), None for any other name."""
  return float(name.removeprefix("alpha_")) if re.fullmatch(r"alpha_[0-9]+(\.[0-9]+)?", name) else None


class InterpolationError(UserError, ValueError):
  """The two runs cannot be blended (other architectures, scales or shapes) or alpha is out of range."""


def _model(config: ml_collections.ConfigDict) -> dict:
  return {k: v for k, v in config.model.to_dict().items() if k not in RUNTIME_FIELDS}


def load_pair(a: str, b: str) -> tuple[run_dir.Run, run_dir.Run]:
  """The runs at ``a`` and ``b`` (workdirs or WORKDIR/checkpoints/STEP), refused unless the same model."""
  runs = [run_dir.load_run(*run_dir.split_checkpoint_path(p)) for p in (a, b)]
  ma, mb = (_model(r.config) for r in runs)
  if ma["name"] != mb["name"]:
    raise InterpolationError(f"--a={a} is a {ma['name']} and --b={b} a {mb['name']}: only runs of the same "
                             "architecture can be interpolated")
  if ma["scale"] != mb["scale"]:
    raise InterpolationError(f"--a={a} is a x{ma['scale']} model and --b={b} a x{mb['scale']} one: the scales "
                             "must match")
  diff = {k: (ma.get(k), mb.get(k)) for k in sorted(set(ma) | set(mb)) if ma.get(k) != mb.get(k)}
  if diff:
    raise InterpolationError(f"--a={a} and --b={b} are {ma['name']} models of different sizes: " + ", ".join(
        f"model.{k} {va!r} vs {vb!r}" for k, (va, vb) in diff.items()))
  fa, fb = (dict(nnx.to_flat_state(r.params)) for r in runs)
  bad = [k for k in fa if k not in fb or fa[k].shape != fb[k].shape]
  if bad or len(fa) != len(fb):
    raise InterpolationError(f"--a={a} and --b={b} hold different parameters (e.g. {'/'.join(map(str, bad[0]))})"
                             if bad else f"--a={a} and --b={b} hold different parameters")
  return runs[0], runs[1]


def check_alpha(alpha: float) -> None:
  if not (np.isfinite(alpha) and 0.0 <= alpha <= 1.0):
    raise InterpolationError(f"--alpha={alpha}: give values in [0, 1] (1: run A, 0: run B)")


def blend(params_a: nnx.State, params_b: nnx.State, alpha: float) -> nnx.State:
  """alpha * A + (1 - alpha) * B, leaf by leaf (exactly A at 1 and exactly B at 0)."""
  check_alpha(alpha)
  return jax.tree.map(lambda x, y: jnp.asarray(alpha * np.asarray(x, np.float64) + (1.0 - alpha) *
                                              np.asarray(y, np.float64), np.asarray(x).dtype), params_a, params_b)


def serving_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A's config for a workdir that holds only generator weights: no EMA, no discriminator, no LDL (A may be a
  training run, whose config has every section, or a workdir of imported weights, whose config has the model)."""
  out = config.copy_and_resolve_references()
  out.train.ema_decay = 0.0
  if "loss" in out:
    out.loss.adversarial = 0.0
    out.loss.ldl = 0.0
    if not any(float(out.loss.get(k, 0.0)) > 0 for k in ("l1", "mse", "charbonnier", "ssim", "perceptual", "dists")):
      out.loss.l1 = 1.0
  return out


def _metadata(a: str, b: str, runs: tuple[run_dir.Run, run_dir.Run], alpha: float) -> dict:
  ra, rb = runs
  return {"step": 0, "scale": int(ra.config.model.scale), "interpolated": {
      "a": os.path.abspath(a), "a_step": int(ra.step), "b": os.path.abspath(b), "b_step": int(rb.step),
      "alpha": float(alpha) + 0.0}}


def written(workdir: str, a: str, b: str, runs: tuple[run_dir.Run, run_dir.Run], alpha: float) -> bool:
  """Whether ``workdir`` already holds this very blend (same runs, steps and alpha), written by an earlier
  command that was stopped or is being repeated."""
  source = run_dir.read_source(workdir)
  return source is not None and source.get("interpolated") == _metadata(a, b, runs, alpha)["interpolated"] and \
      bool(checkpoint_io.saved_steps(os.path.join(workdir, "checkpoints")))


def write(workdir: str, a: str, b: str, runs: tuple[run_dir.Run, run_dir.Run], alpha: float) -> bool:
  """Writes the workdir of the blend at ``alpha`` (the workdir rule of ``run_dir.check_new_workdir``); returns
  False, writing nothing, when it already holds this blend (``written``)."""
  if written(workdir, a, b, runs, alpha):
    return False
  run_dir.check_new_workdir(workdir)
  params = blend(runs[0].params, runs[1].params, alpha)
  run_dir.write_params_workdir(workdir, serving_config(runs[0].config), params, _metadata(a, b, runs, alpha),
                               f"writing the blend into {workdir}")
  return True
