"""RDN weights of mmagic / mmediting (``RDNNet``; the DIV2K x2/x3/x4 checkpoints ``rdn_x*c64b16_g1_1000k_div2k``).

Names (after the ``generator.`` prefix of the restorer's ``state_dict``): sfe1, sfe2,
rdbs.<i>.layers.<j>.conv, rdbs.<i>.lff, gff.0, gff.1, upscale.<k> (conv, pixel shuffle: 0 for x2/x3, 0 and 2 for
x4), output. mmagic's data preprocessor divides pixels by 255 with a zero mean, so the network works on [0, 1]
as sr_jax's does: no rescaling. Its up-sampler convolutions map ``mid_channels`` to ``mid_channels * r^2`` where
the authors' (and sr_jax's) map ``G0`` to ``G * r^2``: the same network whenever ``channel_growth`` equals
``mid_channels``, as in every published mmagic RDN (64 and 64); other widths are refused with a message.
"""

from __future__ import annotations

import re

import numpy as np
from flax import nnx

from sr_jax.hub.importers import common

NAME = "mmagic RDN"
RGB_RANGE = 1.0  # DataPreprocessor(mean=0, std=255): the network sees [0, 1].
_PREFIX = "generator."


def normalise(sd: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """The generator's tensors without the restorer's ``generator.`` prefix (discriminators etc. dropped)."""
  if any(k.startswith(_PREFIX) for k in sd):
    return {k[len(_PREFIX):]: v for k, v in sd.items() if k.startswith(_PREFIX)}
  return sd


def matches(sd: dict[str, np.ndarray]) -> bool:
  sd = normalise(sd)
  return "sfe1.weight" in sd and "rdbs.0.lff.weight" in sd


def infer_architecture(sd: dict[str, np.ndarray]) -> dict:
  """Model config fields (scale, num_blocks, num_layers, growth, features, channels) from tensor shapes."""
  sd = normalise(sd)
  blocks = {int(m.group(1)) for k in sd if (m := re.match(r"rdbs\.(\d+)\.lff\.weight$", k))}
  layers = {int(m.group(1)) for k in sd if (m := re.match(r"rdbs\.0\.layers\.(\d+)\.conv\.weight$", k))}
  up = sorted(int(m.group(1)) for k in sd if (m := re.match(r"upscale\.(\d+)\.weight$", k)))
  features, channels = (int(n) for n in sd["sfe1.weight"].shape[:2])
  growth = int(sd["rdbs.0.layers.0.conv.weight"].shape[0])
  if not up or len(up) > 2:
    raise common.LayoutError(f"{NAME}: unexpected up-sampler layers upscale.{up}")
  ratio = sd[f"upscale.{up[0]}.weight"].shape[0] / features
  scale = 4 if len(up) == 2 else int(round(ratio ** 0.5))
  if growth != features:
    raise common.LayoutError(f"{NAME} with channel_growth {growth} != mid_channels {features}: its up-sampler is wider "
                     "than the RDN definition sr_jax follows (the authors' G * r^2); only equal widths import")
  return dict(name="rdn", scale=scale, num_blocks=len(blocks), num_layers=len(layers), growth=growth,
              features=features, channels=channels)


def _name_map(arch: dict) -> dict[tuple, str]:
  """sr_jax parameter path (without kernel/bias) -> mmagic module name."""
  m = {("sfe1",): "sfe1", ("sfe2",): "sfe2", ("gff1",): "gff.0", ("gff2",): "gff.1", ("out",): "output"}
  for i in range(arch["num_blocks"]):
    m[("blocks", i, "lff")] = f"rdbs.{i}.lff"
    for j in range(arch["num_layers"]):
      m[("blocks", i, "convs", j)] = f"rdbs.{i}.layers.{j}.conv"
  for k in range(2 if arch["scale"] == 4 else 1):
    m[("up", k)] = f"upscale.{2 * k}"
  return m


def to_params(sd: dict[str, np.ndarray], arch: dict, template: nnx.State, rgb_range: float = RGB_RANGE
              ) -> nnx.State:
  return common.fill(normalise(sd), _name_map(arch), template, rgb_range, NAME)
