"""The DISTS metric (Ding et al., TPAMI 2020) of uint8 image pairs (RGB / 255, gray replicated). The network, its
weights and the differentiable distance are ``sr_jax.nets.dists``.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import numpy as np

from sr_jax.image import color
from sr_jax.nets import lpips
from sr_jax.nets.dists import DISTSWeightsError, distance, load


@dataclasses.dataclass
class Scorer:
  """DISTS of uint8 image pairs (RGB / 255; gray replicated), jitted per shape."""

  def __post_init__(self):
    graphdef, self.params = load()
    self._fn = jax.jit(functools.partial(distance, graphdef))

  def __call__(self, img0: np.ndarray, img1: np.ndarray) -> float:
    to = lambda x: color.gray_to_rgb(x if x.ndim == 2 else x[..., :3]).astype(np.float32) / 255.0
    return float(self._fn(self.params, to(img0)[None], to(img1)[None])[0])


@functools.lru_cache(maxsize=1)
def scorer() -> Scorer:
  return Scorer()


def check_weights() -> None:
  """Raises DISTSWeightsError now (before any compilation) when the weights cannot be found."""
  try:
    lpips.package_weights_path("vgg")
  except lpips.LPIPSWeightsError as e:
    raise DISTSWeightsError(f"DISTS: {e}") from None
