"""Imports published weights into an sr_jax workdir; the format is recognised from the tensor names.

Formats (one module each: ``matches``, ``infer_architecture``, ``to_params``, ``NAME``, ``RGB_RANGE``):
- ``edsr_rdn``: the RDN authors' EDSR-PyTorch layout;
- ``basicsr_rrdbnet``: BasicSR / Real-ESRGAN / ESRGAN RRDBNet (also the original ESRGAN ``model.N`` names);
- ``mmagic_rdn``: mmagic / mmediting RDN (``generator.`` names of a restorer's ``state_dict``);
- ``isr``: idealo ISR's Keras RDN and RRDN (``.hdf5``), into its own variants ``isr_rdn`` / ``isr_rrdn``.
Files are read by ``weights_io`` (.pth/.pt with torch, .safetensors, .npz, .h5; ``params_ema`` preferred).
"""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from sr_jax import checkpointing, run_dir, state as state_lib, weights_io
from sr_jax.configs import default
from sr_jax.importers import basicsr_rrdbnet, edsr_rdn, isr, mmagic_rdn
from sr_jax.models import registry

FORMATS = (edsr_rdn, basicsr_rrdbnet, mmagic_rdn, isr)


def read_state_dict(path: str) -> dict[str, np.ndarray]:
  return weights_io.read_tensors(path)


def detect(sd: dict[str, np.ndarray], path: str = "the state dict"):
  """The format module whose names ``sd`` uses; raises listing the known formats."""
  for fmt in FORMATS:
    if fmt.matches(sd):
      return fmt
  raise ValueError(f"{path}: not a known weights layout ({', '.join(f.NAME for f in FORMATS)}); keys start "
                   "with: " + ", ".join(sorted(sd)[:5]))


def import_to_workdir(weights: str, workdir: str, rgb_range: float | None = None) -> dict:
  """Writes WORKDIR/config.json and a step-0 checkpoint holding the imported weights; returns the model fields
  (name, scale, ...). ``rgb_range``: the pixel range the weights were trained on (default: the format's)."""
  if os.path.exists(os.path.join(workdir, "checkpoints")):
    raise FileExistsError(f"{workdir} already holds checkpoints; import into a new workdir")
  sd = read_state_dict(weights)
  fmt = detect(sd, weights)
  arch = fmt.infer_architecture(sd)
  config = default.get_config()
  config.model.update(arch)
  template = nnx.state(nnx.eval_shape(lambda: registry.build_generator(config.model)))
  params = jax.tree.map(jnp.asarray, fmt.to_params(sd, arch, template, fmt.RGB_RANGE if rgb_range is None
                                                   else rgb_range))
  opt = state_lib.Optimizers.from_config(config)
  os.makedirs(workdir, exist_ok=True)
  run_dir.write_json(os.path.join(workdir, run_dir.CONFIG_FILE), json.loads(config.to_json()))
  with checkpointing.Checkpointer(workdir, async_save=False) as ckpt:
    ckpt.save(0, state_lib.create_state(params, opt.tx),
              {"step": 0, "scale": arch["scale"], "imported_from": os.path.abspath(weights), "format": fmt.NAME})
  return arch
