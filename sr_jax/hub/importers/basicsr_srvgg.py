"""SRVGGNetCompact weights of Real-ESRGAN / BasicSR (``realesr-animevideov3.pth``, ``realesr-general-x4v3.pth``)
into sr_jax's ``srvgg`` (``models/srvgg.py``); also what ``importers/ncnn.py`` reads from ncnn files.

BasicSR names the layers by position in one ``body`` list: body.0 the first conv, then alternately an
activation and a conv, the last conv producing C*s^2 channels. PReLU activations hold ``body.N.weight`` (one
slope per channel); ReLU/LeakyReLU ones hold nothing, so a file without PReLU tensors is taken as LeakyReLU(0.1)
only if asked (``activation``: the published models all use PReLU). Real-ESRGAN's files keep ``params``.
Pixels are in [0, 1], as sr_jax's.
"""

from __future__ import annotations

import re

import numpy as np
from flax import nnx

from sr_jax.hub.importers import common

NAME = "BasicSR SRVGGNetCompact"
RGB_RANGE = 1.0
_KEY = re.compile(r"body\.(\d+)\.(weight|bias)$")


def matches(sd: dict[str, np.ndarray]) -> bool:
  return ("body.0.weight" in sd and sd["body.0.weight"].ndim == 4 and "conv_first.weight" not in sd
          and all(_KEY.match(k) for k in sd))


def _convs(sd: dict[str, np.ndarray]) -> list[int]:
  return sorted(int(m.group(1)) for k in sd if (m := _KEY.match(k)) and m.group(2) == "weight"
                and sd[k].ndim == 4)


def infer_architecture(sd: dict[str, np.ndarray]) -> dict:
  if not matches(sd):
    raise common.LayoutError("not an SRVGGNetCompact state dict (body.N names, body.0 a convolution); keys start "
                             "with: " + ", ".join(sorted(sd)[:5]))
  convs = _convs(sd)
  if convs != list(range(0, 2 * len(convs), 2)):
    raise common.LayoutError(f"convolutions at body.{convs}: SRVGGNetCompact has one at every even index")
  prelu = all(f"body.{i + 1}.weight" in sd for i in convs[:-1])
  if not prelu:
    raise common.LayoutError("no PReLU slopes (body.1.weight, ...) between the convolutions: the published "
                             "SRVGGNetCompact models use PReLU; a ReLU/LeakyReLU one cannot be told apart")
  features, channels = sd["body.0.weight"].shape[:2]
  out = sd[f"body.{convs[-1]}.weight"].shape[0]
  scale = int(round((out / channels) ** 0.5))
  if scale * scale * channels != out:
    raise common.LayoutError(f"the last convolution (body.{convs[-1]}) gives {out} channels, not {channels} x s^2")
  return dict(name="srvgg", scale=scale, num_blocks=len(convs) - 2, features=int(features), channels=int(channels),
              activation="prelu")


def name_map(arch: dict) -> dict[tuple, str]:
  n = arch["num_blocks"]
  m = {("convs", i): f"body.{2 * i}" for i in range(n + 2)}
  m.update({("prelus", i): f"body.{2 * i + 1}" for i in range(n + 1)})
  return m


def to_params(sd: dict[str, np.ndarray], arch: dict, template: nnx.State, rgb_range: float = RGB_RANGE
              ) -> nnx.State:
  return common.fill(sd, name_map(arch), template, rgb_range, NAME)
