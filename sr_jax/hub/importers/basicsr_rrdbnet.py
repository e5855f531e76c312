"""RRDBNet weights of BasicSR / Real-ESRGAN (``RealESRGAN_x4plus.pth``, ``RealESRGAN_x2plus.pth``, BasicSR's
ESRGAN) and of the original ESRGAN repository (``RRDB_ESRGAN_x4.pth``: ``model.N`` names).

BasicSR names: conv_first, body.<i>.rdb<k>.conv<j> (k 1-3, j 1-5), conv_body, conv_up1, conv_up2, conv_hr,
conv_last. The old ESRGAN layout is renamed to those first (model.0, model.1.sub.<i>.RDB<k>.conv<j>.0,
model.1.sub.<N>, model.3, model.6, model.8, model.10), as BasicSR's own conversion script does. Checkpoints
holding ``params_ema`` and ``params`` give ``params_ema`` (weights_io). The scale is read off conv_first's
input channels (3: x4, 12: x2 after pixel-unshuffle, 48: x1); pixels are in [0, 1], as sr_jax's.
"""

from __future__ import annotations

import re

import numpy as np
from flax import nnx

from sr_jax.hub.importers import common

NAME = "BasicSR RRDBNet"
RGB_RANGE = 1.0
_OLD = {"model.0": "conv_first", "model.3": "conv_up1", "model.6": "conv_up2", "model.8": "conv_hr",
        "model.10": "conv_last"}


def normalise(sd: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """BasicSR names, whatever the layout (the old ESRGAN one is renamed)."""
  if "conv_first.weight" in sd or "model.0.weight" not in sd:
    return sd
  blocks = {int(m.group(1)) for k in sd if (m := re.match(r"model\.1\.sub\.(\d+)\.RDB", k))}
  out = {}
  for key, value in sd.items():
    module, leaf = key.rsplit(".", 1)
    if module in _OLD:
      module = _OLD[module]
    elif (m := re.match(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0$", module)):
      module = f"body.{m.group(1)}.rdb{m.group(2)}.conv{m.group(3)}"
    elif module == f"model.1.sub.{len(blocks)}":
      module = "conv_body"
    out[f"{module}.{leaf}"] = value
  return out


def matches(sd: dict[str, np.ndarray]) -> bool:
  sd = normalise(sd)
  return "conv_first.weight" in sd and "body.0.rdb1.conv1.weight" in sd


def infer_architecture(sd: dict[str, np.ndarray]) -> dict:
  sd = normalise(sd)
  if not matches(sd):
    raise common.LayoutError("not an RRDBNet state dict (no conv_first / body.0.rdb1.conv1); keys start with: "
                     + ", ".join(sorted(sd)[:5]))
  blocks = {int(m.group(1)) for k in sd if (m := re.match(r"body\.(\d+)\.rdb1\.conv1\.weight$", k))}
  features, cin = sd["conv_first.weight"].shape[:2]
  channels = sd["conv_last.weight"].shape[0]
  scale = {1: 4, 4: 2, 16: 1}.get(cin // channels)
  if scale is None:
    raise common.LayoutError(f"conv_first takes {cin} channels for {channels} output channels: not x1, x2 or x4")
  return dict(name="rrdbnet", scale=scale, num_blocks=len(blocks), growth=int(sd["body.0.rdb1.conv1.weight"].shape[0]),
              features=int(features), channels=int(channels))


def name_map(arch: dict) -> dict[tuple, str]:
  m = {(k,): k for k in ("conv_first", "conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last")}
  for i in range(arch["num_blocks"]):
    for k in range(3):
      for j in range(5):
        m[("body", i, "rdbs", k, "convs", j)] = f"body.{i}.rdb{k + 1}.conv{j + 1}"
  return m


def to_params(sd: dict[str, np.ndarray], arch: dict, template: nnx.State, rgb_range: float = RGB_RANGE
              ) -> nnx.State:
  return common.fill(normalise(sd), name_map(arch), template, rgb_range, NAME)
