"""Feature losses through a frozen pretrained network: the VGG perceptual loss and DISTS.

* ``Perceptual``: sum over VGG layers of weight * criterion(features(pred), features(target)), the target's
  features without gradient (SRGAN's VGG54, ESRGAN's conv5_4 before ReLU, Real-ESRGAN's conv1_2..conv5_4
  with 0.1/0.1/1/1/1; ``config.perceptual``).
* ``DISTSLoss``: the batch mean of DISTS (sr_jax.nets.dists; the DISTS paper's and neosr's loss), the
  metric's own definition and weights.
The networks are frozen: their weights are an argument of the step, never differentiated nor in the optimizer
state.
"""

from __future__ import annotations

import dataclasses

import jax
from flax import nnx

from sr_jax.losses.pixel import CRITERIA
from sr_jax.nets import dists


def parse_layers(spec: str, key: str = "perceptual.layers") -> dict[str, float]:
  """'conv5_4' or 'conv1_2:0.1,conv2_2:0.1,conv3_4:1' -> {layer: weight} (a bare name weighs 1)."""
  out = {}
  for part in (p.strip() for p in spec.split(",")):
    if not part:
      continue
    name, _, weight = part.partition(":")
    try:
      w = float(weight) if weight else 1.0
    except ValueError:
      raise ValueError(f"config.{key}={spec!r}: weight {weight!r} of {name!r} is not a number") from None
    if w < 0:
      raise ValueError(f"config.{key}={spec!r}: weight of {name!r} is negative")
    out[name.strip()] = w
  if not out:
    raise ValueError(f"config.{key} is empty; e.g. 'conv5_4' or 'conv1_2:0.1,conv2_2:0.1,conv3_4:1'")
  return out


@dataclasses.dataclass(frozen=True)
class Perceptual:
  graphdef: nnx.GraphDef
  layer_weights: tuple[tuple[str, float], ...]
  criterion: str

  def __call__(self, vgg_params: nnx.State, pred: jax.Array, target: jax.Array) -> jax.Array:
    vgg = nnx.merge(self.graphdef, jax.lax.stop_gradient(vgg_params))
    fp = vgg(pred)
    ft = jax.tree.map(jax.lax.stop_gradient, vgg(target))
    return sum(w * CRITERIA[self.criterion](fp[name], ft[name]) for name, w in self.layer_weights)


@dataclasses.dataclass(frozen=True)
class DISTSLoss:
  graphdef: nnx.GraphDef

  def __call__(self, params: dict, pred: jax.Array, target: jax.Array) -> jax.Array:
    params = jax.lax.stop_gradient(params)
    return jax.numpy.mean(dists.distance(self.graphdef, params, pred, jax.lax.stop_gradient(target)))
