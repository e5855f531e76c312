"""Imports published weights into an sr_jax workdir; the format is recognised from the tensor names.

Formats (one module each: ``matches``, ``infer_architecture``, ``to_params``, ``NAME``, ``RGB_RANGE``):
- ``edsr_rdn``: the RDN authors' EDSR-PyTorch layout;
- ``basicsr_rrdbnet``: BasicSR / Real-ESRGAN / ESRGAN RRDBNet (also the original ESRGAN ``model.N`` names);
- ``mmagic_rdn``: mmagic / mmediting RDN (``generator.`` names of a restorer's ``state_dict``);
- ``basicsr_srvgg``: Real-ESRGAN's SRVGGNetCompact (``body.N`` names), into ``srvgg``;
- ``basicsr_edsr``: BasicSR-trained EDSR and RCAN; ``edsr_pytorch``: EDSR-PyTorch's EDSR and RCAN (the layout of
  EDSR's and RCAN's own releases), both into ``edsr`` / ``rcan``;
- ``basicsr_swinir``: SwinIR of its repository's releases and of BasicSR (the same names), into ``swinir``;
- ``hat_official``: HAT of XPixelGroup/HAT's releases, into ``hat``;
- ``isr``: idealo ISR's Keras RDN and RRDN (``.hdf5``), into its own variants ``isr_rdn`` / ``isr_rrdn``.
What the tensors cannot say (EDSR's ``res_scale``) is assumed as the format documents and can be given as
``overrides`` (a format's ``ASKED`` lists which). Files are read by ``weights_io`` (.pth/.pt with torch,
.safetensors, .npz, .h5; ``params_ema`` preferred), and ncnn models (``MODEL.param`` + ``MODEL.bin``) by
``ncnn``, which names their tensors as BasicSR does.
"""

from __future__ import annotations

import os
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from sr_jax.core import weights_io
from sr_jax.hub.importers import (basicsr_edsr, basicsr_rrdbnet, basicsr_srvgg, basicsr_swinir, common, edsr_pytorch,
                                  edsr_rdn, hat_official, isr, mmagic_rdn, ncnn)
from sr_jax.models import registry
from sr_jax.workdir import run_dir

FORMATS = (edsr_rdn, basicsr_rrdbnet, basicsr_srvgg, basicsr_edsr, edsr_pytorch, basicsr_swinir, hat_official,
           mmagic_rdn, isr)


def read_state_dict(path: str) -> dict[str, np.ndarray]:
  if path.lower().endswith(ncnn.EXTENSION):
    if not os.path.isfile(path):
      raise weights_io.WeightsFileError(f"weights file {path} does not exist")
    return ncnn.read(path)
  return weights_io.read_tensors(path)


def detect(sd: dict[str, np.ndarray], path: str = "the state dict"):
  """The format module whose names ``sd`` uses; raises listing the known formats."""
  for fmt in FORMATS:
    if fmt.matches(sd):
      return fmt
  raise common.LayoutError(f"{path}: not a known weights layout ({', '.join(f.NAME for f in FORMATS)}); keys "
                           "start with: " + ", ".join(sorted(sd)[:5]))


def _apply_overrides(fmt, arch: dict, overrides: dict | None) -> dict:
  """``arch`` with the fields the user gave that the tensors cannot say (the format's ``ASKED``)."""
  asked = getattr(fmt, "ASKED", {}).get(arch["name"], ())
  for key, value in (overrides or {}).items():
    if value is None:
      continue
    if key not in asked:
      raise common.LayoutError(f"model.{key} cannot be set for a {fmt.NAME} {arch['name']} model: "
                               + (f"only {', '.join(asked)}" if asked else "its tensors define it entirely"))
    arch[key] = value
  return arch


def check_tensors(sd: dict[str, np.ndarray], path: str) -> None:
  """Refuses a state dict no importer can do arithmetic on: no tensors, or a tensor with a zero-sized dimension
  (every importer reads channel counts and ratios off the shapes)."""
  if not sd:
    raise common.LayoutError(f"{path} holds no float tensors")
  empty = [(k, v.shape) for k, v in sd.items() if 0 in v.shape]
  if empty:
    raise common.LayoutError(f"{path}: tensor {empty[0][0]} has shape {tuple(empty[0][1])}, with no values "
                             f"({len(empty)} such tensor{'s' if len(empty) > 1 else ''}); not a trained model")


def check_architecture(arch: dict, fmt, path: str) -> None:
  """Every size the format read off the shapes must be a positive number (a tensor flattened or cut down gives
  0 or a negative one, which no network can be built with)."""
  for key, value in arch.items():
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not (np.isfinite(value) and value > 0) \
        and key not in getattr(fmt, "MAY_BE_ZERO", ()):
      raise common.LayoutError(f"{path}: its tensors give model.{key} = {value} for a {fmt.NAME} model (a tensor of "
                               "an unexpected shape, e.g. flattened or cut down); not a model sr_jax can build")


def _to_params(weights: str, rgb_range: float | None, overrides: dict | None = None):
  """(format, model fields, parameters) of a weights file; any failure to interpret it names the file."""
  fmt = None
  try:
    sd = read_state_dict(weights)
    check_tensors(sd, weights)
    fmt = detect(sd, weights)
    arch = _apply_overrides(fmt, fmt.infer_architecture(sd), overrides)
    check_architecture(arch, fmt, weights)
    config = run_dir.reader_config({"model": arch})
    template = nnx.state(nnx.eval_shape(lambda: registry.build_generator(config.model)))
    params = fmt.to_params(sd, arch, template, fmt.RGB_RANGE if rgb_range is None else rgb_range)
  except (common.LayoutError, weights_io.WeightsFileError) as e:
    raise type(e)(str(e) if weights in str(e) else f"{weights}: {e}") from None
  except (KeyError, IndexError, TypeError, ValueError, ArithmeticError) as e:  # Unexpected names, ranks or sizes.
    raise common.LayoutError(f"{weights}: its tensors do not form a {fmt.NAME if fmt else 'known'} model sr_jax "
                             f"can build ({type(e).__name__}: {e})") from e
  return fmt, config, arch, jax.tree.map(jnp.asarray, params)


def read_model(weights: str, rgb_range: float | None = None, overrides: dict | None = None
               ) -> tuple[ml_collections.ConfigDict, nnx.GraphDef, nnx.State]:
  """(config, graphdef, parameters) of a weights file, in memory (no workdir written)."""
  _, config, _, params = _to_params(weights, rgb_range, overrides)
  return config, registry.generator_graphdef(config.model), params


def import_to_workdir(weights: str, workdir: str, rgb_range: float | None = None,
                      overrides: dict | None = None, *, expect: Callable[[dict], None] | None = None) -> dict:
  """Writes a new workdir (``run_dir.write_params_workdir``: config.json and a step-0 checkpoint) holding the
  imported weights; returns the model fields (name, scale, ...). ``rgb_range``: the pixel range the weights were
  trained on (default: the format's); ``overrides``: model fields the tensors cannot say ({'res_scale': 0.1}; None
  values are ignored); ``expect``: called with the model fields before anything is written, to refuse a model
  that is not the one asked for.

  Refuses NaN/Inf weights (naming the tensor). If writing fails (a full disk, Ctrl-C), nothing is left at
  ``workdir`` and the same command can simply be run again."""
  run_dir.check_new_workdir(workdir)
  fmt, config, arch, params = _to_params(weights, rgb_range, overrides)
  if expect is not None:
    expect(arch)
  run_dir.write_params_workdir(workdir, config, params, {"step": 0, "scale": arch["scale"],
                                                         "imported_from": os.path.abspath(weights), "format": fmt.NAME},
                               f"importing {weights} into {workdir}")
  return arch
