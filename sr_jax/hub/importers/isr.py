"""idealo ISR weights (``.hdf5`` from Keras ``save_weights``): its RDN (psnr-small, psnr-large, noise-cancel) and
RRDN (gans), into sr_jax's ``isr_rdn`` / ``isr_rrdn`` (``models/isr.py``).

Keras names each layer (``F_m1``, ``F_0``, ``F_<d>_<c>``, ``LFF_<d>``, ``GFF_1``, ``GFF_2``, ``UPN1-3``, ``SR``;
RRDN: ``Pre_blocks_conv``, ``F_<t>_<d>_<c>``, ``LFF_<t>_<d>``, ``post_blocks_conv``, ``PreShuffle``, ``SR``) and
stores ``<layer>/<layer>/kernel:0`` (HWIO, as sr_jax's) and ``bias:0``; whole-model files nest them under
``model_weights/``. D, C, T, G, G0 and the scale are read off the shapes. ISR feeds pixels / 255, as sr_jax. The
RRDN's depth-to-space is TensorFlow's (channels ordered i, j, c); PreShuffle's output channels are permuted to
the (c, i, j) order of sr_jax's pixel shuffle, so the imported network computes exactly what ISR's does.
"""

from __future__ import annotations

import re

import numpy as np
from flax import nnx

from sr_jax.hub.importers import common

NAME = "idealo ISR"
RGB_RANGE = 1.0  # ISR divides pixels by 255.


def normalise(sd: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """``{layer}.kernel`` / ``{layer}.bias`` from Keras HDF5 paths (``[model_weights/]layer/.../kernel:0``)."""
  out = {}
  for key, value in sd.items():
    parts = key.removeprefix("model_weights/").split("/")
    leaf = parts[-1].split(":")[0]
    if len(parts) >= 2 and leaf in ("kernel", "bias"):
      out[f"{parts[0]}.{leaf}"] = value
  return out or sd


def matches(sd: dict[str, np.ndarray]) -> bool:
  sd = normalise(sd)
  return "F_m1.kernel" in sd or "Pre_blocks_conv.kernel" in sd


def _ints(sd: dict, pattern: str) -> list[tuple[int, ...]]:
  return sorted(tuple(map(int, m.groups())) for k in sd if (m := re.fullmatch(pattern, k)))


def _scale(out_channels: int, channels: int, layer: str) -> int:
  scale = int(round((out_channels / channels) ** 0.5))
  if scale * scale * channels != out_channels:
    raise common.LayoutError(f"{NAME}: {layer} has {out_channels} output channels, not channels * scale^2")
  return scale


def infer_architecture(sd: dict[str, np.ndarray]) -> dict:
  """Model config fields from tensor shapes (Keras kernels are HWIO)."""
  sd = normalise(sd)
  if "F_m1.kernel" in sd:
    features, channels = sd["F_m1.kernel"].shape[3], sd["F_m1.kernel"].shape[2]
    dc = _ints(sd, r"F_(\d+)_(\d+)\.kernel")
    scale = _scale(sd["UPN3.kernel"].shape[3], channels, "UPN3")
    if sd["SR.kernel"].shape[2] != channels * scale * scale:
      raise common.LayoutError(f"{NAME} RDN with upscaling='shuffle' (SR takes {sd['SR.kernel'].shape[2]} "
                               "channels): only the published weights' upscaling='ups' is supported")
    return dict(name="isr_rdn", scale=scale, num_blocks=max(d for d, _ in dc), num_layers=max(c for _, c in dc),
                growth=int(sd["F_1_1.kernel"].shape[3]), features=int(features), channels=int(channels))
  if "Pre_blocks_conv.kernel" not in sd:
    raise common.LayoutError("not an ISR RDN/RRDN weights file (no F_m1 or Pre_blocks_conv layer); keys start "
                             "with: " + ", ".join(sorted(sd)[:5]))
  features, channels = sd["Pre_blocks_conv.kernel"].shape[3], sd["Pre_blocks_conv.kernel"].shape[2]
  tdc = _ints(sd, r"F_(\d+)_(\d+)_(\d+)\.kernel")
  return dict(name="isr_rrdn", scale=_scale(sd["PreShuffle.kernel"].shape[3], channels, "PreShuffle"),
              num_blocks=max(t[0] for t in tdc), rdbs_per_block=max(t[1] for t in tdc),
              num_layers=max(t[2] for t in tdc), growth=int(sd["F_1_1_1.kernel"].shape[3]),
              features=int(features), channels=int(channels))


def _name_map(arch: dict) -> dict[tuple, str]:
  """sr_jax parameter path (without kernel/bias) -> ISR's Keras layer name."""
  if arch["name"] == "isr_rdn":
    m = {("sfe1",): "F_m1", ("sfe2",): "F_0", ("gff1",): "GFF_1", ("gff2",): "GFF_2", ("upn1",): "UPN1",
         ("upn2",): "UPN2", ("upn3",): "UPN3", ("out",): "SR"}
    for d in range(arch["num_blocks"]):
      m[("blocks", d, "lff")] = f"LFF_{d + 1}"
      m.update({("blocks", d, "convs", c): f"F_{d + 1}_{c + 1}" for c in range(arch["num_layers"])})
    return m
  m = {("pre",): "Pre_blocks_conv", ("post",): "post_blocks_conv", ("up",): "PreShuffle", ("out",): "SR"}
  for t in range(arch["num_blocks"]):
    for d in range(arch["rdbs_per_block"]):
      m[("blocks", t, "rdbs", d, "lff")] = f"LFF_{t + 1}_{d + 1}"
      m.update({("blocks", t, "rdbs", d, "convs", c): f"F_{t + 1}_{d + 1}_{c + 1}" for c in range(arch["num_layers"])})
  return m


def tf_to_torch_shuffle_order(channels: int, scale: int) -> np.ndarray:
  """Index array P with torch-order channel k = P-th TF-order channel: (c, i, j) <- (i, j, c)."""
  c, i, j = np.meshgrid(np.arange(channels), np.arange(scale), np.arange(scale), indexing="ij")
  return ((i * scale + j) * channels + c).reshape(-1)


def to_params(sd: dict[str, np.ndarray], arch: dict, template: nnx.State, rgb_range: float = RGB_RANGE
              ) -> nnx.State:
  sd = dict(normalise(sd))
  if arch["name"] == "isr_rrdn":
    order = tf_to_torch_shuffle_order(arch["channels"], arch["scale"])
    sd["PreShuffle.kernel"], sd["PreShuffle.bias"] = sd["PreShuffle.kernel"][..., order], sd["PreShuffle.bias"][order]
  named = {k.replace(".kernel", ".weight"): v for k, v in sd.items()}
  return common.fill(named, _name_map(arch), template, rgb_range, NAME, kernel_layout="HWIO")
