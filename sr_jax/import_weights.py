r"""Imports RDN weights in the layout of the authors' PyTorch code into an sr_jax workdir.

  python -m sr_jax.import_weights --weights=RDN_BIX2.pt --workdir=runs/rdn_x2_authors
  python -m sr_jax.evaluate --workdir=runs/rdn_x2_authors --datasets=Set5,Set14,B100

Names follow EDSR-PyTorch ``model/rdn.py``: SFENet1, SFENet2, RDBs.<i>.convs.<j>.conv.0, RDBs.<i>.LFF, GFF.0,
GFF.1, UPNet.<k>. D, C, G, G0, the scale and the colour channels are read off the tensor shapes. Files:
``.pth``/``.pt`` (needs torch), ``.safetensors`` or ``.npz`` (no torch needed). The authors trained on pixel
values in [0, 255] (``--rgb_range=255``); sr_jax works in [0, 1], so every bias is divided by ``rgb_range``
(the network is piecewise linear and positively homogeneous, so this is exact).
"""

from __future__ import annotations

import os
import re

import numpy as np
from absl import app, flags, logging

_PREFIXES = ("module.", "model.")


def read_state_dict(path: str) -> dict[str, np.ndarray]:
  """A {name: float32 array} state dict from .pth/.pt, .safetensors or .npz."""
  if not os.path.exists(path):
    raise FileNotFoundError(f"weights file {path} does not exist")
  ext = os.path.splitext(path)[1].lower()
  if ext in (".pth", ".pt"):
    try:
      import torch
    except ImportError:
      raise ImportError(f"{path}: reading .pth needs PyTorch (pip install torch==2.13.0); or convert it to "
                        ".safetensors/.npz on a machine that has torch") from None
    sd = torch.load(path, map_location="cpu", weights_only=True)
    sd = sd.get("state_dict", sd.get("model", sd)) if isinstance(sd, dict) else sd
    sd = {k: v.detach().float().numpy() for k, v in sd.items()}
  elif ext == ".safetensors":
    from safetensors.numpy import load_file
    sd = load_file(path)
  elif ext == ".npz":
    with np.load(path) as f:
      sd = {k: f[k] for k in f.files}
  else:
    raise ValueError(f"{path}: unsupported weights format {ext!r}; accepted: .pth, .pt, .safetensors, .npz")
  out = {}
  for k, v in sd.items():
    for p in _PREFIXES:
      if k.startswith(p):
        k = k[len(p):]
    out[k] = np.asarray(v, np.float32)
  return out


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


def to_params(sd: dict[str, np.ndarray], arch: dict, template, rgb_range: float = 255.0):
  """Fills an nnx.State ``template`` (the model's parameters) from the state dict."""
  from flax import nnx
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


def to_state_dict(params, arch: dict, rgb_range: float = 255.0) -> dict[str, np.ndarray]:
  """The inverse of ``to_params``: sr_jax parameters -> authors' state dict (OIHW, biases x rgb_range)."""
  from flax import nnx
  names = _name_map(arch)
  sd = {}
  for path, var in nnx.to_flat_state(params):
    module, leaf = tuple(path[:-1]), path[-1]
    value = np.asarray(var[...])
    sd[f"{names[module]}.{'weight' if leaf == 'kernel' else 'bias'}"] = (
        value.transpose(3, 2, 0, 1) if leaf == "kernel" else value * rgb_range)
  return sd


def import_to_workdir(weights: str, workdir: str, rgb_range: float = 255.0):
  """Writes WORKDIR/config.json and a step-0 checkpoint holding the imported weights."""
  import json

  import jax
  from flax import nnx

  from configs import default
  from sr_jax import checkpointing, optim, train, train_step
  if os.path.exists(os.path.join(workdir, "checkpoints")):
    raise FileExistsError(f"{workdir} already holds checkpoints; import into a new workdir")
  sd = read_state_dict(weights)
  arch = infer_architecture(sd)
  config = default.get_config()
  config.model.update(arch)
  model = nnx.eval_shape(lambda: train.build_model(config.model))
  params = to_params(sd, arch, nnx.state(model), rgb_range)
  params = jax.tree.map(jax.numpy.asarray, params)
  tx, _ = optim.make_optimizer(config.train)
  state = train_step.create_state(params, tx)
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "config.json"), "w") as f:
    json.dump(json.loads(config.to_json()), f, indent=1)
  ckpt = checkpointing.Checkpointer(workdir, async_save=False)
  ckpt.save(0, state, {"step": 0, "scale": arch["scale"], "imported_from": os.path.abspath(weights)})
  ckpt.close()
  return arch


def main(argv):
  del argv
  f = flags.FLAGS
  arch = import_to_workdir(f.weights, f.workdir, f.rgb_range)
  print(f"Imported RDN {arch} into {f.workdir} (checkpoint step 0)")


if __name__ == "__main__":  # Flags are defined here only, so the module can be imported beside other CLIs.
  flags.DEFINE_string("weights", None, "The authors' RDN weights (.pth/.pt, .safetensors or .npz).")
  flags.DEFINE_string("workdir", None, "New workdir to create.")
  flags.DEFINE_float("rgb_range", 255.0, "Pixel range the weights were trained on (authors: 255).")
  flags.mark_flags_as_required(["weights", "workdir"])
  app.run(main)
