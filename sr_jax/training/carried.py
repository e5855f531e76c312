"""The train state as the training loop carries it from call to call: packed buffers or a list of arrays.

Each call of the jitted step takes and returns either a few buffers, one per dtype (``core.boundary.Packing``,
config.train.state_layout='packed'), or the state's arrays as a list (``'leaves'``), instead of the TrainState
pytree, whose nnx.State nodes Python flattens and rebuilds on every call (the paper RDN: 904 arrays, ~15-19 ms of
host time per call on the 2-core CPU; ~8 ms as leaves, ~2 ms packed). Packing copies the state once per step
inside the jit: nothing on an accelerator, ~60-80 ms a step for the paper RDN on a 2-core CPU, where a call's
host time overlaps the previous step's arithmetic anyway; so 'auto' packs on accelerators only. Both give the
pytree step's results bit for bit (tests/test_boundary.py). The TrainState itself is rebuilt only when the loop
needs it (the NaN check at log points, validation, a checkpoint, the end) and kept until the next step.
"""

from __future__ import annotations

from typing import Callable

import jax
from jax.sharding import Sharding

from sr_jax.core import boundary
from sr_jax.training.state import TrainState


def resolve_layout(layout: str) -> str:
  """config.train.state_layout with 'auto' decided: 'packed' on accelerators, 'leaves' on CPU."""
  if layout == "auto":
    return "leaves" if jax.default_backend() == "cpu" else "packed"
  return layout


class CarriedState:
  """``step(jitted, *args)`` runs a ``jit_step`` function over the carried form; ``state()`` is the TrainState."""

  def __init__(self, state: TrainState, sharding: Sharding, layout: str = "packed"):
    self.layout = resolve_layout(layout)
    self.treedef = jax.tree.structure(state)
    if self.layout == "packed":
      self.packing = boundary.Packing(state)
      self._to_state = jax.jit(self.packing.unpack, out_shardings=sharding)
      self.carried = jax.jit(self.packing.pack, out_shardings=sharding)(state)
    elif self.layout == "leaves":
      self.carried = jax.tree.leaves(state)
      self._to_state = lambda leaves: jax.tree.unflatten(self.treedef, leaves)
    else:
      raise ValueError(f"CarriedState: layout {layout!r}, not 'auto', 'packed' or 'leaves'")
    self._state: TrainState | None = state

  def jit_step(self, step_fn: Callable, in_shardings, out_shardings) -> Callable:
    """``step_fn(state, *args) -> (state, metrics)`` jitted over the carried form (donated: updated in place)."""
    if self.layout == "packed":
      fn = self.packing.packed(step_fn)
    else:
      def fn(leaves, *args):
        new_state, metrics = step_fn(jax.tree.unflatten(self.treedef, leaves), *args)
        return jax.tree.leaves(new_state), metrics
    return jax.jit(fn, in_shardings=in_shardings, out_shardings=out_shardings, donate_argnums=0)

  def step(self, jitted: Callable, *args):
    """One call of a ``jit_step`` function; returns its metrics."""
    self.carried, metrics = jitted(self.carried, *args)
    self._state = None
    return metrics

  def state(self) -> TrainState:
    if self._state is None:
      self._state = self._to_state(self.carried)
    return self._state
