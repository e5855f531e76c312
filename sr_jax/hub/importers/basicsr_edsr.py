"""EDSR and RCAN weights trained with BasicSR (``EDSR_Mx4_f64b16_DIV2K_official-0c287733.pth``, BasicSR's RCAN
runs) into sr_jax's ``edsr`` / ``rcan`` (``models/edsr.py``, ``models/rcan.py``: the same layers, the same names).

Names: conv_first, conv_after_body, upsample.<0|2> (one conv per pixel-shuffle stage), conv_last, and the body:
EDSR body.<i>.conv1/conv2; RCAN body.<g>.residual_group.<b>.rcab.<0|2> (the block's convs),
body.<g>.residual_group.<b>.rcab.3.attention.<1|3> (channel attention), body.<g>.conv. Checkpoints holding
``params_ema`` and ``params`` give ``params_ema`` (weights_io). BasicSR works on [0, 255] pixels inside the
network (``img_range`` 255, DIV2K mean), as sr_jax's EDSR and RCAN do, so the tensors are taken as they are.

Not in the weights: ``res_scale`` (EDSR: 0.1 for the paper's 256-feature network, 1 for the baseline, which is
what this importer assumes; ``--res_scale`` overrides it) and ``img_range``/``rgb_mean`` (BasicSR's defaults).
"""

from __future__ import annotations

import re

import numpy as np
from flax import nnx

from sr_jax.hub.importers import common

NAME = "BasicSR EDSR/RCAN"
RGB_RANGE = 255.0  # img_range: the network's own, which sr_jax's EDSR/RCAN share (biases taken as they are).
ASKED = {"edsr": ("res_scale",), "rcan": ("res_scale",)}  # Fields not in the weights a user may give.
_RCAB = re.compile(r"body\.(\d+)\.residual_group\.(\d+)\.rcab\.0\.weight$")


def matches(sd: dict[str, np.ndarray]) -> bool:
  return ("conv_first.weight" in sd and "conv_after_body.weight" in sd and "upsample.0.weight" in sd
          and ("body.0.conv1.weight" in sd or "body.0.residual_group.0.rcab.0.weight" in sd))


def default_res_scale(features: int) -> float:
  """EDSR's: 0.1 for the paper's 256-feature network (its training needed it), 1 otherwise."""
  return 0.1 if features >= 256 else 1.0


def scale_of(up_convs: list[np.ndarray], features: int) -> int:
  """The up-sampling factor from the up-sampler's convs (their output channels: 4F per x2 stage, 9F for x3)."""
  outs = [int(w.shape[0]) for w in up_convs]
  if outs == [4 * features]:
    return 2
  if outs == [9 * features]:
    return 3
  if outs == [4 * features, 4 * features]:
    return 4
  raise common.LayoutError(f"up-sampler convolutions with {outs} output channels for {features} features: "
                           "not x2 (4F), x3 (9F) or x4 (4F, 4F)")


def infer_architecture(sd: dict[str, np.ndarray]) -> dict:
  if not matches(sd):
    raise common.LayoutError("not a BasicSR EDSR/RCAN state dict (conv_first, body, conv_after_body, upsample); "
                             "keys start with: " + ", ".join(sorted(sd)[:5]))
  features, channels = (int(n) for n in sd["conv_first.weight"].shape[:2])
  ups = [sd[f"upsample.{i}.weight"] for i in (0, 2) if f"upsample.{i}.weight" in sd]
  scale = scale_of(ups, features)
  if "body.0.conv1.weight" in sd:
    blocks = {int(m.group(1)) for k in sd if (m := re.match(r"body\.(\d+)\.conv1\.weight$", k))}
    return dict(name="edsr", scale=scale, num_blocks=len(blocks), features=features, channels=channels,
                res_scale=default_res_scale(features))
  rcabs = {(int(m.group(1)), int(m.group(2))) for k in sd if (m := _RCAB.match(k))}
  groups = sorted({g for g, _ in rcabs})
  blocks = {g: sorted(b for gg, b in rcabs if gg == g) for g in groups}
  if groups != list(range(len(groups))) or len({len(b) for b in blocks.values()}) != 1:
    raise common.LayoutError(f"RCAN groups {groups} with {[len(b) for b in blocks.values()]} blocks: every "
                             "residual group must hold the same number of RCABs")
  squeezed = int(sd["body.0.residual_group.0.rcab.3.attention.1.weight"].shape[0])
  if features % squeezed:
    raise common.LayoutError(f"channel attention squeezes {features} features to {squeezed}: not a divisor")
  return dict(name="rcan", scale=scale, num_groups=len(groups), num_blocks=len(blocks[0]), features=features,
              channels=channels, squeeze=features // squeezed, res_scale=1.0)


def name_map(arch: dict) -> dict[tuple, str]:
  """sr_jax parameter path (without kernel/bias) -> BasicSR module name."""
  stages = 2 if arch["scale"] == 4 else 1
  m = {("conv_first",): "conv_first", ("conv_after_body",): "conv_after_body", ("conv_last",): "conv_last",
       **{("upsample", k): f"upsample.{2 * k}" for k in range(stages)}}
  if arch["name"] == "edsr":
    for i in range(arch["num_blocks"]):
      m[("body", i, "conv1")], m[("body", i, "conv2")] = f"body.{i}.conv1", f"body.{i}.conv2"
    return m
  for g in range(arch["num_groups"]):
    m[("body", g, "conv")] = f"body.{g}.conv"
    for b in range(arch["num_blocks"]):
      p = f"body.{g}.residual_group.{b}.rcab"
      m.update({("body", g, "blocks", b, "conv1"): f"{p}.0", ("body", g, "blocks", b, "conv2"): f"{p}.2",
                ("body", g, "blocks", b, "attention", "down"): f"{p}.3.attention.1",
                ("body", g, "blocks", b, "attention", "up"): f"{p}.3.attention.3"})
  return m


def to_params(sd: dict[str, np.ndarray], arch: dict, template: nnx.State, rgb_range: float = RGB_RANGE
              ) -> nnx.State:
  return common.fill(sd, name_map(arch), template, common.range_factor(arch, rgb_range), NAME)
