"""Imports RDN weights in the layout of the authors' PyTorch code (EDSR-PyTorch ``model/rdn.py``).

Names: SFENet1, SFENet2, RDBs.<i>.convs.<j>.conv.0, RDBs.<i>.LFF, GFF.0, GFF.1, UPNet.<k>. D, C, G, G0, the scale
and the colour channels are read off the tensor shapes. The authors trained on pixel values in [0, 255]
(``--rgb_range=255``); sr_jax works in [0, 1], so every bias is divided by ``rgb_range`` (the network is
piecewise linear and positively homogeneous, so this is exact). Files are read by ``weights_io``.
"""

from __future__ import annotations

import json
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from flax import nnx

from sr_jax import checkpointing, run_dir, state as state_lib, weights_io
from sr_jax.configs import default
from sr_jax.models import registry


def read_state_dict(path: str) -> dict[str, np.ndarray]:
  """The authors' state dict ({name: float32 array}) with DataParallel/EDSR ``module.``/``model.`` prefixes removed."""
  return {k.removeprefix("model."): v for k, v in weights_io.read_tensors(path).items()}


def infer_architecture(sd: dict[str, np.ndarray]) -> dict:
  """Model config fields (scale, num_blocks, num_layers, growth, features, channels) from tensor shapes."""
  if "SFENet1.weight" not in sd:
    raise ValueError("not an RDN state dict in the authors' layout (no SFENet1.weight); keys start with: "
                     + ", ".join(sorted(sd)[:5]))
  blocks = {int(m.group(1)) for k in sd if (m := re.match(r"RDBs\.(\d+)\.LFF\.weight$", k))}
  layers = {int(m.group(1)) for k in sd if (m := re.match(r"RDBs\.0\.convs\.(\d+)\.conv\.0\.weight$", k))}
  up = sorted(int(m.group(1)) for k in sd if (m := re.match(r"UPNet\.(\d+)\.weight$", k)))
  features, channels = sd["SFENet1.weight"].shape[:2]
  growth = sd["RDBs.0.convs.0.conv.0.weight"].shape[0]
  if len(up) == 3:
    scale = 4
  elif len(up) == 2:
    scale = int(round((sd[f"UPNet.{up[0]}.weight"].shape[0] / growth) ** 0.5))
  else:
    raise ValueError(f"unexpected UPNet layers {up}")
  return dict(scale=scale, num_blocks=len(blocks), num_layers=len(layers), growth=int(growth),
              features=int(features), channels=int(channels))


def _name_map(arch: dict) -> dict[tuple, str]:
  """sr_jax parameter path (without kernel/bias) -> authors' module name."""
  m = {("sfe1",): "SFENet1", ("sfe2",): "SFENet2", ("gff1",): "GFF.0", ("gff2",): "GFF.1"}
  for i in range(arch["num_blocks"]):
    m[("blocks", i, "lff")] = f"RDBs.{i}.LFF"
    for j in range(arch["num_layers"]):
      m[("blocks", i, "convs", j)] = f"RDBs.{i}.convs.{j}.conv.0"
  stages = 2 if arch["scale"] == 4 else 1
  for k in range(stages):
    m[("up", k)] = f"UPNet.{2 * k}"
  m[("out",)] = f"UPNet.{2 * stages}"
  return m


def to_params(sd: dict[str, np.ndarray], arch: dict, template: nnx.State, rgb_range: float = 255.0) -> nnx.State:
  """Fills an nnx.State ``template`` (the model's parameters) from the state dict."""
  names = _name_map(arch)
  flat = nnx.to_flat_state(template)
  used, values = set(), []
  for path, var in flat:
    module, leaf = tuple(path[:-1]), path[-1]
    torch_name = f"{names[module]}.{'weight' if leaf == 'kernel' else 'bias'}"
    if torch_name not in sd:
      raise ValueError(f"state dict lacks {torch_name} (for {'/'.join(map(str, path))})")
    value = sd[torch_name]
    value = value.transpose(2, 3, 1, 0) if leaf == "kernel" else value / rgb_range  # OIHW -> HWIO.
    if value.shape != var.shape:
      raise ValueError(f"{torch_name}: shape {value.shape} does not fit {'/'.join(map(str, path))} {var.shape}")
    used.add(torch_name)
    values.append((path, var.replace(np.asarray(value, np.float32))))
  extra = sorted(set(sd) - used)
  if extra:
    logging.warning("Ignoring %d tensors not used by RDN: %s", len(extra), ", ".join(extra[:8]))
  return nnx.from_flat_state(values)


def import_to_workdir(weights: str, workdir: str, rgb_range: float = 255.0):
  """Writes WORKDIR/config.json and a step-0 checkpoint holding the imported weights; returns the architecture."""
  if os.path.exists(os.path.join(workdir, "checkpoints")):
    raise FileExistsError(f"{workdir} already holds checkpoints; import into a new workdir")
  sd = read_state_dict(weights)
  arch = infer_architecture(sd)
  config = default.get_config()
  config.model.update(arch)
  template = nnx.state(nnx.eval_shape(lambda: registry.build_generator(config.model)))
  params = jax.tree.map(jnp.asarray, to_params(sd, arch, template, rgb_range))
  opt = state_lib.Optimizers.from_config(config)
  os.makedirs(workdir, exist_ok=True)
  run_dir.write_json(os.path.join(workdir, run_dir.CONFIG_FILE), json.loads(config.to_json()))
  with checkpointing.Checkpointer(workdir, async_save=False) as ckpt:
    ckpt.save(0, state_lib.create_state(params, opt.tx),
              {"step": 0, "scale": arch["scale"], "imported_from": os.path.abspath(weights)})
  return arch
