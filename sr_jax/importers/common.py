"""What every importer shares: filling an sr_jax parameter tree from a PyTorch-layout state dict."""

from __future__ import annotations

import numpy as np
from absl import logging
from flax import nnx


def fill(sd: dict[str, np.ndarray], names: dict[tuple, str], template: nnx.State, rgb_range: float,
         source: str, *, kernel_layout: str = "OIHW") -> nnx.State:
  """``template`` (the model's nnx parameters) with each conv's kernel/bias taken from ``sd``.

  ``names`` maps an sr_jax module path (the parameter path without 'kernel'/'bias') to the source's module
  name; kernels go OIHW -> HWIO (``kernel_layout='HWIO'``: Keras kernels, taken as they are); biases are divided
  by ``rgb_range`` (weights trained on [0, 255] pixels work on [0, 1] this way, exactly, for networks that are
  piecewise linear and positively homogeneous).
  """
  used, values = set(), []
  for path, var in nnx.to_flat_state(template):
    module, leaf = tuple(path[:-1]), path[-1]
    torch_name = f"{names[module]}.{'weight' if leaf == 'kernel' else 'bias'}"
    if torch_name not in sd:
      raise ValueError(f"{source} state dict lacks {torch_name} (for {'/'.join(map(str, path))})")
    value = sd[torch_name]
    if leaf == "kernel":
      value = value.transpose(2, 3, 1, 0) if kernel_layout == "OIHW" else value
    else:
      value = value / rgb_range
    if value.shape != var.shape:
      raise ValueError(f"{torch_name}: shape {value.shape} does not fit {'/'.join(map(str, path))} {var.shape}")
    used.add(torch_name)
    values.append((path, var.replace(np.asarray(value, np.float32))))
  extra = sorted(set(sd) - used)
  if extra:
    logging.warning("Ignoring %d tensors the %s model does not use: %s", len(extra), source, ", ".join(extra[:8]))
  return nnx.from_flat_state(values)
