"""A published model as the command-line programs load it (``--pretrained=NAME``), with Real-ESRGAN's
``--denoise_strength``: its script runs realesr-general-x4v3 as the blend strength x general + (1 - strength) x
the weak-denoise twin realesr-general-wdn-x4v3 (network interpolation, ``inference.interpolation.blend``)."""

from __future__ import annotations

from sr_jax.core.errors import UserError
from sr_jax.hub import model_zoo
from sr_jax.inference import interpolation
from sr_jax.workdir import run_dir

GENERAL, WEAK_DENOISE = "realesr_general_x4v3", "realesr_general_wdn_x4v3"


def load(name: str, *, denoise_strength: float | None = None, bf16: bool = False) -> run_dir.Run:
  """The model ``name`` (imported into the cache on first use); ``denoise_strength`` in [0, 1] for GENERAL only
  (1: GENERAL itself, 0: WEAK_DENOISE; None: GENERAL as published, where Real-ESRGAN's script defaults to 0.5)."""
  name = model_zoo.canonical(name)
  if denoise_strength is not None and name != GENERAL:
    raise UserError(f"--denoise_strength applies to --pretrained={GENERAL} (blended with {WEAK_DENOISE}, as "
                    f"Real-ESRGAN does), not to {name}")
  run = run_dir.load_run(model_zoo.ensure(name), "latest", bf16=bf16)
  if denoise_strength is None or denoise_strength == 1:
    return run
  interpolation.check_alpha(denoise_strength)
  weak = run_dir.load_run(model_zoo.ensure(WEAK_DENOISE), "latest", bf16=bf16)
  return run._replace(params=interpolation.blend(run.params, weak.params, denoise_strength))
