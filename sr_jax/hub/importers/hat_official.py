"""HAT weights of the official releases (XPixelGroup/HAT: ``HAT_SRx4_ImageNet-pretrain.pth``, ``HAT-S_SRx4.pth``,
...) into sr_jax's ``hat`` (``models/hat.py``: the same names).

Names: SwinIR's frame (conv_first, patch_embed.norm, norm, conv_after_body, conv_before_upsample.0,
upsample.<0|2>, conv_last), layers.<i>.residual_group.blocks.<j>.{norm1, attn.qkv, attn.proj,
attn.relative_position_bias_table, conv_block.cab.<0|2>, conv_block.cab.3.attention.<1|3>, norm2, mlp.fc1,
mlp.fc2}, layers.<i>.residual_group.overlap_attn.{norm1, qkv, relative_position_bias_table, proj, norm2,
mlp.fc1, mlp.fc2}, layers.<i>.conv (absent with ``identity``). Releases keep ``params_ema`` (preferred) or
``params``. Read off the tensors: width, groups, blocks, heads, window (the window table's rows: (2w - 1)²),
overlap ratio (the OCAB table's: (w + ow - 1)²), compress ratio, squeeze, MLP ratio, residual connection, scale.
The index buffers (``relative_position_index_SA`` / ``_OCA``) are checked against sr_jax's, not used; the conv
branch's scale (0.01) is not in the weights and is every release's.
"""

from __future__ import annotations

import math
import re

import numpy as np
from flax import nnx

from sr_jax.hub.importers import basicsr_edsr, basicsr_swinir, common
from sr_jax.models import hat, swinir

MAY_BE_ZERO = ("overlap_ratio",)  # (the overlapping window as wide as the window: a legal HAT)
NAME = "HAT (official)"
RGB_RANGE = 1.0
_BLOCK = re.compile(r"layers\.(\d+)\.residual_group\.blocks\.(\d+)\.attn\.qkv\.weight$")
_RG = "layers.{i}.residual_group"


def matches(sd: dict[str, np.ndarray]) -> bool:
  return "conv_first.weight" in sd and "layers.0.residual_group.overlap_attn.qkv.weight" in sd


def _side(rows: int, name: str) -> int:
  side = int(round(math.sqrt(rows)))
  if side * side != rows:
    raise common.LayoutError(f"{name} has {rows} rows, not a square")
  return side


def infer_architecture(sd: dict[str, np.ndarray]) -> dict:
  if not matches(sd):
    raise common.LayoutError("not a HAT state dict (layers.N.residual_group.overlap_attn); keys start with: "
                             + ", ".join(sorted(sd)[:5]))
  features, channels = (int(n) for n in sd["conv_first.weight"].shape[:2])
  blocks = {(int(m.group(1)), int(m.group(2))) for k in sd if (m := _BLOCK.match(k))}
  groups = sorted({i for i, _ in blocks})
  depths = {len([j for ii, j in blocks if ii == i]) for i in groups}
  if groups != list(range(len(groups))) or len(depths) != 1:
    raise common.LayoutError(f"RHAGs {groups} of depths {sorted(depths)}: sr_jax builds equal groups")
  sa = sd["layers.0.residual_group.blocks.0.attn.relative_position_bias_table"]
  window = (_side(sa.shape[0], "the window attention's bias table") + 1) // 2
  ow = _side(sd["layers.0.residual_group.overlap_attn.relative_position_bias_table"].shape[0],
             "the overlapping attention's bias table") + 1 - window
  if "conv_before_upsample.0.weight" not in sd:
    raise common.LayoutError("no pixel-shuffle reconstruction (conv_before_upsample): not a HAT SR model")
  ups = [sd[f"upsample.{i}.weight"] for i in (0, 2) if f"upsample.{i}.weight" in sd]
  p = "layers.0.residual_group.blocks.0"
  return dict(name="hat", scale=basicsr_edsr.scale_of(ups, swinir.NUM_FEAT), num_blocks=len(groups),
              num_layers=depths.pop(), features=features, num_heads=int(sa.shape[1]), window_size=window,
              mlp_ratio=int(sd[f"{p}.mlp.fc1.weight"].shape[0]) / features,
              compress_ratio=features // int(sd[f"{p}.conv_block.cab.0.weight"].shape[0]),
              squeeze=features // int(sd[f"{p}.conv_block.cab.3.attention.1.weight"].shape[0]),
              overlap_ratio=(ow - window) / window,
              resi_connection="1conv" if "layers.0.conv.weight" in sd else "identity", channels=channels)


def _check_buffers(sd: dict[str, np.ndarray], arch: dict) -> None:
  expected = {"relative_position_index_SA": swinir.relative_position_index(arch["window_size"]),
              "relative_position_index_OCA": hat.relative_position_index_oca(arch["window_size"],
                                                                             arch["overlap_ratio"])}
  for name, want in expected.items():
    if name in sd and not np.array_equal(np.asarray(sd[name]), want):
      raise common.LayoutError(f"{name} is not the index sr_jax computes for window {arch['window_size']}, "
                               f"overlap ratio {arch['overlap_ratio']:g}")


def name_map(arch: dict) -> dict[tuple, str]:
  m = {("conv_first",): "conv_first", ("patch_norm",): "patch_embed.norm", ("norm",): "norm",
       ("conv_before_upsample",): "conv_before_upsample.0", ("conv_last",): "conv_last",
       **{("upsample", k): f"upsample.{2 * k}" for k in range(2 if arch["scale"] == 4 else 1)}}
  if arch["resi_connection"] == "1conv":
    m[("conv_after_body",)] = "conv_after_body"
  for i in range(arch["num_blocks"]):
    rg = _RG.format(i=i)
    if arch["resi_connection"] == "1conv":
      m[("layers", i, "conv")] = f"layers.{i}.conv"
    o, ours = f"{rg}.overlap_attn", ("layers", i, "overlap_attn")
    m.update({ours + (n,): f"{o}.{n}" for n in ("norm1", "qkv", "proj", "norm2")})
    m.update({ours + ("fc1",): f"{o}.mlp.fc1", ours + ("fc2",): f"{o}.mlp.fc2",
              ours + ("relative_position_bias_table",): f"{o}.relative_position_bias_table"})
    for j in range(arch["num_layers"]):
      b, ours = f"{rg}.blocks.{j}", ("layers", i, "blocks", j)
      m.update({ours + ("conv_block", "conv1"): f"{b}.conv_block.cab.0",
                ours + ("conv_block", "conv2"): f"{b}.conv_block.cab.2",
                ours + ("conv_block", "attention", "down"): f"{b}.conv_block.cab.3.attention.1",
                ours + ("conv_block", "attention", "up"): f"{b}.conv_block.cab.3.attention.3"})
  swin = {k: v for k, v in basicsr_swinir.name_map({**arch, "upsampler": "pixelshuffle", "resi_connection": "1conv"})
          .items() if "blocks" in k}  # The Swin layers' names are SwinIR's.
  return {**m, **swin}


def to_params(sd: dict[str, np.ndarray], arch: dict, template: nnx.State, rgb_range: float = RGB_RANGE
              ) -> nnx.State:
  if rgb_range != RGB_RANGE:
    raise common.LayoutError(f"HAT weights trained on [0, {rgb_range:g}] pixels cannot be rescaled; only img_range 1")
  _check_buffers(sd, arch)
  learned = {k: v for k, v in sd.items() if not k.startswith("relative_position_index") and "attn_mask" not in k}
  return common.fill(learned, name_map(arch), template, 1.0, NAME)
