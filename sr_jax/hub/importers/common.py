"""What every importer shares: filling an sr_jax parameter tree from a PyTorch-layout state dict."""

from __future__ import annotations

import numpy as np
from absl import logging
from flax import nnx

from sr_jax.core.errors import UserError


class LayoutError(UserError, ValueError):
  """A weights file whose tensors do not form a model sr_jax can import; the message names the tensor."""


def _file_shape(shape: tuple, kernel_layout: str) -> tuple:
  """An sr_jax kernel shape (conv HWIO, dense (in, out)) as the file would hold it (PyTorch: OIHW, (out, in))."""
  if kernel_layout != "OIHW":
    return shape
  return (shape[3], shape[2], shape[0], shape[1]) if len(shape) == 4 else tuple(reversed(shape))


def _to_jax(value: np.ndarray, kernel_layout: str) -> np.ndarray:
  if kernel_layout != "OIHW":
    return value
  return value.transpose(2, 3, 1, 0) if value.ndim == 4 else value.T


def fill(sd: dict[str, np.ndarray], names: dict[tuple, str], template: nnx.State, rgb_range: float,
         source: str, *, kernel_layout: str = "OIHW") -> nnx.State:
  """``template`` (the model's nnx parameters) with each conv's kernel/bias taken from ``sd``.

  ``names`` maps an sr_jax module path (the parameter path without 'kernel'/'bias') to the source's module
  name, or a full parameter path to a full tensor name (parameters that are not a module's weight or bias:
  SwinIR's relative-position tables); kernels go OIHW -> HWIO and dense (out, in) -> (in, out)
  (``kernel_layout='HWIO'``: Keras kernels, taken as they are), other weights (PReLU slopes, LayerNorm
  scales) as they are; biases are divided
  by ``rgb_range`` (weights trained on [0, 255] pixels work on [0, 1] this way, exactly, for networks that are
  piecewise linear and positively homogeneous).
  """
  used, values = set(), []
  for path, var in nnx.to_flat_state(template):
    module, leaf = tuple(path[:-1]), path[-1]
    torch_name = names.get(tuple(path)) or f"{names[module]}.{'bias' if leaf == 'bias' else 'weight'}"
    if torch_name not in sd:
      raise LayoutError(f"{source} state dict lacks {torch_name} (for {'/'.join(map(str, path))})")
    value = sd[torch_name]
    wanted = _file_shape(var.shape, kernel_layout) if leaf == "kernel" else var.shape
    if value.shape != tuple(wanted):
      raise LayoutError(f"{torch_name}: shape {tuple(value.shape)} in the file does not fit "
                        f"{'/'.join(map(str, path))}, which needs {tuple(wanted)}")
    if leaf == "kernel":
      value = _to_jax(value, kernel_layout)
    elif leaf == "bias":
      value = value / rgb_range
    if not np.all(np.isfinite(value)):
      raise LayoutError(f"{torch_name}: {int(np.sum(~np.isfinite(value))):,} of {value.size:,} values are NaN or "
                        "infinite; a network with them upscales to garbage. Not importing it")
    used.add(torch_name)
    values.append((path, var.replace(np.asarray(value, np.float32))))
  extra = sorted(set(sd) - used)
  if extra:
    logging.warning("Ignoring %d tensors the %s model does not use: %s", len(extra), source, ", ".join(extra[:8]))
  return nnx.from_flat_state(values)


def range_factor(arch: dict, rgb_range: float, internal: float = 255.0) -> float:
  """What the biases are divided by when weights trained on [0, ``rgb_range``] pixels go into a network that
  scales its input to [0, ``internal``] itself (sr_jax's EDSR and RCAN, as the references): exact for
  piecewise-linear, positively homogeneous networks; RCAN's channel attention (a sigmoid of pooled features) is
  not, so it takes only weights of its own range."""
  if rgb_range == internal:
    return 1.0
  if arch["name"] == "rcan":
    raise LayoutError(f"RCAN weights trained on [0, {rgb_range:g}] pixels: sr_jax's RCAN works on [0, "
                      f"{internal:g}] inside (as BasicSR's and the authors'), and its channel attention cannot be "
                      f"rescaled exactly; only rgb_range {internal:g} can be imported")
  return rgb_range / internal
