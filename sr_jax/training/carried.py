"""The train state as the training loop carries it from call to call: packed, one buffer per dtype.

Each call of the jitted step takes and returns those few buffers (``core.boundary.Packing``) instead of the
TrainState pytree, so its host cost does not grow with the state's Python structure (the paper RDN: 904 arrays,
~19 ms per call as a pytree, ~1-3 ms packed, on the 2-core CPU). The TrainState itself is unpacked only when the
loop needs it (the NaN check at log points, validation, a checkpoint, the end) and kept until the next step.
"""

from __future__ import annotations

from typing import Callable

import jax
from jax.sharding import Sharding

from sr_jax.core import boundary
from sr_jax.training.state import TrainState


class CarriedState:
  """``step(fn, *args)`` runs a step over the packed buffers; ``state()`` is the current TrainState."""

  def __init__(self, state: TrainState, sharding: Sharding):
    self.packing = boundary.Packing(state)
    self._unpack = jax.jit(self.packing.unpack, out_shardings=sharding)
    self.buffers = jax.jit(self.packing.pack, out_shardings=sharding)(state)
    self._state: TrainState | None = state

  def jit_step(self, step_fn: Callable, in_shardings, out_shardings) -> Callable:
    """``step_fn(state, *args) -> (state, metrics)`` jitted over the buffers (donated: updated in place)."""
    return jax.jit(self.packing.packed(step_fn), in_shardings=in_shardings, out_shardings=out_shardings,
                   donate_argnums=0)

  def step(self, jitted: Callable, *args):
    """One call of a ``jit_step`` function; returns its metrics."""
    self.buffers, metrics = jitted(self.buffers, *args)
    self._state = None
    return metrics

  def state(self) -> TrainState:
    if self._state is None:
      self._state = self._unpack(self.buffers)
    return self._state
