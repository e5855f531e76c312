"""SwinIR weights of the SwinIR repository's releases (``001_classicalSR_DIV2K_s48w8_SwinIR-M_x2.pth``, ...) and
of BasicSR-trained SwinIR (the same names) into sr_jax's ``swinir`` (``models/swinir.py``).

Names: conv_first, patch_embed.norm, layers.<i>.residual_group.blocks.<j>.{norm1, attn.qkv, attn.proj,
attn.relative_position_bias_table, norm2, mlp.fc1, mlp.fc2}, layers.<i>.conv (``1conv``; ``3conv``:
conv.<0|2|4>), norm, conv_after_body, and the reconstruction: conv_before_upsample.0 + upsample.<0|2> +
conv_last (pixelshuffle), upsample.0 (pixelshuffledirect), conv_before_upsample.0 + conv_up1/conv_up2/conv_hr +
conv_last (nearest+conv). Releases keep ``params`` or ``params_ema`` (weights_io prefers the EMA).

Everything is read off the tensors: width, RSTBs and layers, heads (the bias table's columns), window (its rows
are (2w - 1)²), MLP ratio, residual connection, reconstruction and scale. The buffers some files hold
(``relative_position_index``, ``attn_mask``) are checked against what sr_jax computes, not used. Pixels are in
[0, 1] (img_range 1, as every release): other ranges cannot be rescaled (LayerNorm, softmax).
"""

from __future__ import annotations

import math
import re

import numpy as np
from flax import nnx

from sr_jax.hub.importers import basicsr_edsr, common
from sr_jax.models import swinir

NAME = "SwinIR (SwinIR repository / BasicSR)"
RGB_RANGE = 1.0
_BLOCK = re.compile(r"layers\.(\d+)\.residual_group\.blocks\.(\d+)\.attn\.qkv\.weight$")
_PREFIX = "layers.{i}.residual_group.blocks.{j}"


def matches(sd: dict[str, np.ndarray]) -> bool:
  return ("conv_first.weight" in sd and "layers.0.residual_group.blocks.0.attn.qkv.weight" in sd
          and "layers.0.residual_group.overlap_attn.qkv.weight" not in sd)  # That is HAT.


def _reconstruction(sd: dict, features: int, channels: int) -> tuple[str, int]:
  if "conv_up1.weight" in sd:
    return "nearest+conv", 4
  if "conv_before_upsample.0.weight" in sd:
    ups = [sd[f"upsample.{i}.weight"] for i in (0, 2) if f"upsample.{i}.weight" in sd]
    return "pixelshuffle", basicsr_edsr.scale_of(ups, swinir.NUM_FEAT)
  if "upsample.0.weight" not in sd:
    raise common.LayoutError("no reconstruction layers (conv_before_upsample, upsample): a denoising or JPEG "
                             "SwinIR, not a super-resolution one")
  out = int(sd["upsample.0.weight"].shape[0])
  scale = int(round(math.sqrt(out / channels)))
  if scale * scale * channels != out:
    raise common.LayoutError(f"upsample.0 gives {out} channels, not {channels} x s^2")
  return "pixelshuffledirect", scale


def infer_architecture(sd: dict[str, np.ndarray]) -> dict:
  if not matches(sd):
    raise common.LayoutError("not a SwinIR state dict (conv_first, layers.N.residual_group.blocks.M); keys start "
                             "with: " + ", ".join(sorted(sd)[:5]))
  if "absolute_pos_embed" in sd:
    raise common.LayoutError("absolute_pos_embed: a SwinIR with absolute position embeddings (ape=True), which "
                             "sr_jax does not build (no published SR model uses them)")
  features, channels = (int(n) for n in sd["conv_first.weight"].shape[:2])
  blocks = {(int(m.group(1)), int(m.group(2))) for k in sd if (m := _BLOCK.match(k))}
  rstbs = sorted({i for i, _ in blocks})
  depths = {len([j for ii, j in blocks if ii == i]) for i in rstbs}
  if rstbs != list(range(len(rstbs))) or len(depths) != 1:
    raise common.LayoutError(f"RSTBs {rstbs} of depths {sorted(depths)}: sr_jax builds equal RSTBs")
  table = sd["layers.0.residual_group.blocks.0.attn.relative_position_bias_table"]
  window = (int(round(math.sqrt(table.shape[0]))) + 1) // 2
  if (2 * window - 1) ** 2 != table.shape[0]:
    raise common.LayoutError(f"relative_position_bias_table has {table.shape[0]} rows, not (2w - 1)^2")
  heads = {int(v.shape[1]) for k, v in sd.items() if k.endswith("relative_position_bias_table")}
  if len(heads) != 1:
    raise common.LayoutError(f"layers with {sorted(heads)} attention heads: sr_jax builds equal layers")
  upsampler, scale = _reconstruction(sd, features, channels)
  hidden = int(sd["layers.0.residual_group.blocks.0.mlp.fc1.weight"].shape[0])
  return dict(name="swinir", scale=scale, num_blocks=len(rstbs), num_layers=depths.pop(), features=features,
              num_heads=heads.pop(), window_size=window, mlp_ratio=hidden / features, upsampler=upsampler,
              resi_connection="3conv" if "layers.0.conv.0.weight" in sd else "1conv", channels=channels)


def _check_buffers(sd: dict[str, np.ndarray], window: int) -> None:
  """A file's relative_position_index / attn_mask must be what sr_jax computes (for some training size)."""
  index = swinir.relative_position_index(window)
  for k, v in sd.items():
    if k.endswith("relative_position_index") and not np.array_equal(np.asarray(v), index):
      raise common.LayoutError(f"{k} is not the relative-position index of {window}x{window} windows")
    if k.endswith("attn_mask") and v.ndim == 3:
      nw = v.shape[0]
      sizes = [(a * window, nw // a * window) for a in range(1, nw + 1) if nw % a == 0]
      if not any(np.array_equal(np.asarray(v), np.asarray(swinir.shifted_window_mask(h, w, window, window // 2)))
                 for h, w in sizes):
        raise common.LayoutError(f"{k} is not the shifted-window mask of {window}x{window} windows at any size")


def _conv_names(prefix: str, kind: str) -> dict[int, str]:
  return {0: prefix} if kind == "1conv" else {0: f"{prefix}.0", 1: f"{prefix}.2", 2: f"{prefix}.4"}


def name_map(arch: dict) -> dict[tuple, str]:
  """sr_jax parameter path (without kernel/bias; the bias tables: with the leaf) -> the reference's name."""
  kind = arch["resi_connection"]
  m = {("conv_first",): "conv_first", ("patch_norm",): "patch_embed.norm", ("norm",): "norm"}
  m.update({("conv_after_body", k): v for k, v in _conv_names("conv_after_body", kind).items()})
  for i in range(arch["num_blocks"]):
    m.update({("layers", i, "conv", k): v for k, v in _conv_names(f"layers.{i}.conv", kind).items()})
    for j in range(arch["num_layers"]):
      p, ours = _PREFIX.format(i=i, j=j), ("layers", i, "blocks", j)
      m.update({ours + ("norm1",): f"{p}.norm1", ours + ("norm2",): f"{p}.norm2", ours + ("fc1",): f"{p}.mlp.fc1",
                ours + ("fc2",): f"{p}.mlp.fc2", ours + ("attn", "qkv"): f"{p}.attn.qkv",
                ours + ("attn", "proj"): f"{p}.attn.proj",
                ours + ("attn", "relative_position_bias_table"): f"{p}.attn.relative_position_bias_table"})
  if arch["upsampler"] == "pixelshuffledirect":
    m[("upsample", 0)] = "upsample.0"
    return m
  m.update({("conv_before_upsample",): "conv_before_upsample.0", ("conv_last",): "conv_last"})
  if arch["upsampler"] == "pixelshuffle":
    m.update({("upsample", k): f"upsample.{2 * k}" for k in range(2 if arch["scale"] == 4 else 1)})
  else:
    m.update({(n,): n for n in ("conv_up1", "conv_up2", "conv_hr")})
  return m


def to_params(sd: dict[str, np.ndarray], arch: dict, template: nnx.State, rgb_range: float = RGB_RANGE
              ) -> nnx.State:
  if rgb_range != RGB_RANGE:
    raise common.LayoutError(f"SwinIR weights trained on [0, {rgb_range:g}] pixels cannot be rescaled (LayerNorm, "
                             "softmax); only img_range 1 imports")
  _check_buffers(sd, arch["window_size"])
  learned = {k: v for k, v in sd.items() if not k.endswith(("relative_position_index", "attn_mask"))}
  return common.fill(learned, name_map(arch), template, 1.0, NAME)
