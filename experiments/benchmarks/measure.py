"""What the benchmarks time, without flags: a warm-able train-step call and an upscale call for a config.
bench.py (CPU figures, the PyTorch side by side) and gpu_check.py (the first accelerator) share them."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from sr_jax.inference import upscaler
from sr_jax.models import registry
from sr_jax.training import carried as carried_lib, state as state_lib, train_step


def train_call(config, batch: int, patch: int, boundary: str | None = None):
  """(one jitted call of ``config.train.steps_per_dispatch`` optimizer steps on a fixed random batch, FLOPs
  per optimizer step); the train state is carried (and donated) from call to call. ``boundary``: what crosses
  the jit boundary: the ``TrainState`` pytree, as the trainer passed it until 2026-12-07 ("state"), or the
  trainer's own carried state (training/carried.py): its leaves ("leaves") or one buffer per dtype ("packed");
  default: config.train.state_layout, what the trainer would use here. The call's ``state_leaves()`` gives the
  carried state's leaves."""
  m = config.model
  opt = state_lib.Optimizers.from_config(config)
  step_fn, frozen = train_step.build(config, opt)
  k = config.train.steps_per_dispatch  # Optimizer steps per call (lax.scan).
  state = jax.jit(state_lib.init_fn(config, opt))()
  if boundary == "state":
    step = jax.jit(functools.partial(step_fn, frozen=frozen), donate_argnums=0)
    carry = {"state": state}

    def run(batch_arrays):
      carry["state"], metrics = step(carry["state"], batch_arrays)
      return metrics
    state_leaves = lambda: jax.tree.leaves(carry["state"])
  else:
    carried = carried_lib.CarriedState(state, jax.sharding.SingleDeviceSharding(jax.devices()[0]),
                                       boundary or config.train.state_layout)
    step = carried.jit_step(step_fn, in_shardings=None, out_shardings=None)
    run = lambda batch_arrays: carried.step(step, batch_arrays, frozen)
    state_leaves = lambda: jax.tree.leaves(carried.state())
  rng = np.random.default_rng(0)
  s = m.scale
  lead = (k,) if k > 1 else ()
  data = {"lr": jnp.asarray(rng.integers(0, 256, (*lead, batch, patch, patch, m.channels), dtype=np.uint8)),
          "hr": jnp.asarray(rng.integers(0, 256, (*lead, batch, patch * s, patch * s, m.channels), dtype=np.uint8))}

  def one_call():
    return run(data)
  one_call.state_leaves = state_leaves
  return one_call, 3 * registry.flops_per_output_pixel(m) * batch * (patch * s) ** 2


def infer_call(model_cfg, size: int, graphdef=None, params=None, tile: int = 0):
  """An upscale of a fixed random ``size``² uint8 image (random weights unless given)."""
  if graphdef is None:
    graphdef, params = nnx.split(registry.build_generator(model_cfg))
  lr = np.random.default_rng(0).integers(0, 256, (size, size, model_cfg.channels), np.uint8)
  up = upscaler.Upscaler(graphdef, params, model_cfg, tile=tile)
  return lambda: up(lr)
