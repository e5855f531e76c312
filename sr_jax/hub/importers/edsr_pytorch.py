"""EDSR and RCAN weights in the layout of EDSR-PyTorch (``model/edsr.py``, ``model/rcan.py``), which EDSR's own
releases (``edsr_x4-4f62e9ef.pt``, ``edsr_baseline_x2-1bc95232.pt``) and RCAN's (``RCAN_BIX4.pt``) use.

Names: sub_mean, head.0, the body, body.<N> (the conv after it), tail.0.<0|2> (the up-sampler's convs),
tail.1, add_mean. EDSR body.<i>.body.<0|2>; RCAN body.<g>.body.<b>.body.<0|2> (the RCAB's convs),
body.<g>.body.<b>.body.3.conv_du.<0|2> (channel attention), body.<g>.body.<B> (the group's conv).

The mean shifts are 1x1 convolutions with fixed weights: they are checked, not trusted (identity weights, biases
-/+ rgb_range x the DIV2K mean); their biases say which pixel range the weights were trained on, and a file
whose range differs from ``--rgb_range`` (default 255, the authors') is refused with the value to pass. Not in
the weights: EDSR's ``res_scale`` (0.1 for the paper's 256-feature network, 1 for the baseline, assumed so;
``--res_scale`` overrides); RCAN's code never applies its ``res_scale``, so it is 1.
"""

from __future__ import annotations

import re

import numpy as np
from flax import nnx

from sr_jax.hub.importers import basicsr_edsr, common
from sr_jax.models import edsr

NAME = "EDSR-PyTorch EDSR/RCAN"
RGB_RANGE = 255.0  # The authors trained with --rgb_range=255.
ASKED = {"edsr": ("res_scale",)}  # Fields not in the weights a user may give (RCAN's code never applies res_scale).
_RCAB = re.compile(r"body\.(\d+)\.body\.(\d+)\.body\.0\.weight$")


def normalise(sd: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """EDSR-PyTorch's own training checkpoints prefix the names with ``model.``."""
  return {k.removeprefix("model."): v for k, v in sd.items()}


def matches(sd: dict[str, np.ndarray]) -> bool:
  sd = normalise(sd)
  return ("head.0.weight" in sd and "tail.0.0.weight" in sd
          and ("body.0.body.0.weight" in sd or "body.0.body.0.body.0.weight" in sd))


def _body_convs(sd: dict, pattern: str) -> list[int]:
  return sorted({int(m.group(1)) for k in sd if (m := re.match(pattern, k))})


def infer_architecture(sd: dict[str, np.ndarray]) -> dict:
  sd = normalise(sd)
  if not matches(sd):
    raise common.LayoutError("not an EDSR-PyTorch EDSR/RCAN state dict (head.0, body, tail.0.0); keys start with: "
                             + ", ".join(sorted(sd)[:5]))
  features, channels = (int(n) for n in sd["head.0.weight"].shape[:2])
  scale = basicsr_edsr.scale_of([sd[f"tail.0.{i}.weight"] for i in (0, 2) if f"tail.0.{i}.weight" in sd], features)
  rcabs = {(int(m.group(1)), int(m.group(2))) for k in sd if (m := _RCAB.match(k))}
  if not rcabs:  # EDSR: body.<i>.body.0 for the blocks, body.<N>.weight the conv after them.
    blocks = _body_convs(sd, r"body\.(\d+)\.body\.0\.weight$")
    if blocks != list(range(len(blocks))) or f"body.{len(blocks)}.weight" not in sd:
      raise common.LayoutError(f"EDSR residual blocks at body.{blocks} without the conv body.{len(blocks)} after "
                               "them")
    return dict(name="edsr", scale=scale, num_blocks=len(blocks), features=features, channels=channels,
                res_scale=basicsr_edsr.default_res_scale(features))
  groups = sorted({g for g, _ in rcabs})
  counts = {len([b for gg, b in rcabs if gg == g]) for g in groups}
  if groups != list(range(len(groups))) or len(counts) != 1:
    raise common.LayoutError(f"RCAN residual groups {groups} of unequal sizes {sorted(counts)}")
  squeezed = int(sd["body.0.body.0.body.3.conv_du.0.weight"].shape[0])
  if features % squeezed:
    raise common.LayoutError(f"channel attention squeezes {features} features to {squeezed}: not a divisor")
  return dict(name="rcan", scale=scale, num_groups=len(groups), num_blocks=counts.pop(), features=features,
              channels=channels, squeeze=features // squeezed, res_scale=1.0)


def check_mean_shifts(sd: dict[str, np.ndarray], channels: int, rgb_range: float) -> None:
  """sub_mean / add_mean must be the fixed shifts of ``rgb_range`` x the DIV2K mean (identity weights)."""
  mean = np.asarray(edsr.RGB_MEAN if channels == 3 else (sum(edsr.RGB_MEAN) / 3,), np.float64)
  for name, sign in (("sub_mean", -1.0), ("add_mean", 1.0)):
    if f"{name}.bias" not in sd:
      continue  # Not every export keeps the fixed layers; the network's own shift is the same.
    w, b = np.asarray(sd[f"{name}.weight"], np.float64), np.asarray(sd[f"{name}.bias"], np.float64)
    if w.shape != (channels, channels, 1, 1) or not np.allclose(w[:, :, 0, 0], np.eye(channels), atol=1e-6):
      raise common.LayoutError(f"{name}.weight is not the identity (rgb_std other than 1): sr_jax's EDSR/RCAN "
                               "shift by the DIV2K mean only")
    found = sign * b / mean
    if not np.allclose(b, sign * rgb_range * mean, rtol=1e-4):
      hint = (f"; they were trained on [0, {found.mean():.4g}] pixels: pass --rgb_range={found.mean():.4g}"
              if np.allclose(found, found.mean(), rtol=1e-4) and found.mean() > 0 else
              " (another mean than DIV2K's, which sr_jax's EDSR/RCAN use)")
      raise common.LayoutError(f"{name}.bias {np.round(b, 4).tolist()} is not {sign:+g} x {rgb_range:g} x the DIV2K "
                               f"mean{hint}")


def name_map(arch: dict) -> dict[tuple, str]:
  """sr_jax parameter path (without kernel/bias) -> EDSR-PyTorch module name."""
  stages = 2 if arch["scale"] == 4 else 1
  n = arch["num_blocks"] if arch["name"] == "edsr" else arch["num_groups"]
  m = {("conv_first",): "head.0", ("conv_after_body",): f"body.{n}", ("conv_last",): "tail.1",
       **{("upsample", k): f"tail.0.{2 * k}" for k in range(stages)}}
  if arch["name"] == "edsr":
    for i in range(n):
      m[("body", i, "conv1")], m[("body", i, "conv2")] = f"body.{i}.body.0", f"body.{i}.body.2"
    return m
  for g in range(n):
    m[("body", g, "conv")] = f"body.{g}.body.{arch['num_blocks']}"
    for b in range(arch["num_blocks"]):
      p = f"body.{g}.body.{b}.body"
      m.update({("body", g, "blocks", b, "conv1"): f"{p}.0", ("body", g, "blocks", b, "conv2"): f"{p}.2",
                ("body", g, "blocks", b, "attention", "down"): f"{p}.3.conv_du.0",
                ("body", g, "blocks", b, "attention", "up"): f"{p}.3.conv_du.2"})
  return m


def to_params(sd: dict[str, np.ndarray], arch: dict, template: nnx.State, rgb_range: float = RGB_RANGE
              ) -> nnx.State:
  sd = normalise(sd)
  check_mean_shifts(sd, arch["channels"], rgb_range)
  used = {k for k in sd if k.startswith(("sub_mean.", "add_mean."))}
  return common.fill({k: v for k, v in sd.items() if k not in used}, name_map(arch), template,
                     common.range_factor(arch, rgb_range), NAME)
