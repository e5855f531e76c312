"""RDN weights in the layout of the authors' PyTorch code (EDSR-PyTorch ``model/rdn.py``).

Names: SFENet1, SFENet2, RDBs.<i>.convs.<j>.conv.0, RDBs.<i>.LFF, GFF.0, GFF.1, UPNet.<k>. D, C, G, G0, the scale
and the colour channels are read off the tensor shapes. The authors trained on pixel values in [0, 255]
(``--rgb_range=255``); sr_jax works in [0, 1], so every bias is divided by ``rgb_range`` (the network is
piecewise linear and positively homogeneous, so this is exact). Files are read by ``weights_io``.
"""

from __future__ import annotations

import re

import numpy as np
from flax import nnx

from sr_jax.hub.importers import common

NAME = "EDSR-PyTorch RDN"
RGB_RANGE = 255.0  # The authors trained with --rgb_range=255.


def normalise(sd: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """EDSR's checkpoints prefix the model's names with ``model.``."""
  return {k.removeprefix("model."): v for k, v in sd.items()}


def matches(sd: dict[str, np.ndarray]) -> bool:
  return "SFENet1.weight" in normalise(sd)


def infer_architecture(sd: dict[str, np.ndarray]) -> dict:
  """Model config fields (scale, num_blocks, num_layers, growth, features, channels) from tensor shapes."""
  sd = normalise(sd)
  if "SFENet1.weight" not in sd:
    raise common.LayoutError("not an RDN state dict in the authors' layout (no SFENet1.weight); keys start with: "
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
    raise common.LayoutError(f"unexpected UPNet layers {up}")
  return dict(name="rdn", scale=scale, num_blocks=len(blocks), num_layers=len(layers), growth=int(growth),
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


def to_params(sd: dict[str, np.ndarray], arch: dict, template: nnx.State, rgb_range: float = RGB_RANGE
              ) -> nnx.State:
  """Fills an nnx.State ``template`` (the model's parameters) from the state dict."""
  return common.fill(normalise(sd), _name_map(arch), template, rgb_range, NAME)
