"""What the benchmarks time, without flags: a warm-able train-step call and an upscale call for a config.
bench.py (CPU figures, the PyTorch side by side) and gpu_check.py (the first accelerator) share them."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from sr_jax.core import boundary as boundary_lib
from sr_jax.inference import upscaler
from sr_jax.models import registry
from sr_jax.training import state as state_lib, train_step


def train_call(config, batch: int, patch: int, boundary: str = "state"):
  """(one jitted call of ``config.train.steps_per_dispatch`` optimizer steps on a fixed random batch, FLOPs
  per optimizer step); the train state is carried (and donated) from call to call. ``boundary``: what crosses
  the jit boundary, the ``TrainState`` pytree as the trainer passed it until 2026-12-07 ("state"), the list of
  its leaves with the tree structure closed over ("leaves"), or those leaves packed into one buffer per dtype as
  the trainer passes them now ("packed", core/boundary.py). The
  call's ``state_leaves()`` gives the carried state's leaves."""
  m = config.model
  opt = state_lib.Optimizers.from_config(config)
  step_fn, frozen = train_step.build(config, opt)
  k = config.train.steps_per_dispatch  # Optimizer steps per call (lax.scan).
  state = jax.jit(state_lib.init_fn(config, opt))()
  if boundary == "state":
    step = jax.jit(functools.partial(step_fn, frozen=frozen), donate_argnums=0)
    carry, leaves = {"state": state}, lambda c: jax.tree.leaves(c)
  elif boundary == "leaves":
    flat, treedef = jax.tree.flatten(state)

    def flat_step(state_leaves, batch):
      new_state, metrics = step_fn(jax.tree.unflatten(treedef, state_leaves), batch, frozen)
      return jax.tree.leaves(new_state), metrics
    step = jax.jit(flat_step, donate_argnums=0)
    carry, leaves = {"state": flat}, lambda c: c
  else:  # What the trainer does (training/carried.py).
    packing = boundary_lib.Packing(state)
    step = jax.jit(packing.packed(functools.partial(step_fn, frozen=frozen)), donate_argnums=0)
    carry = {"state": jax.jit(packing.pack)(state)}
    unpack = jax.jit(packing.unpack)
    leaves = lambda c: jax.tree.leaves(unpack(c))
  rng = np.random.default_rng(0)
  s = m.scale
  lead = (k,) if k > 1 else ()
  data = {"lr": jnp.asarray(rng.integers(0, 256, (*lead, batch, patch, patch, m.channels), dtype=np.uint8)),
          "hr": jnp.asarray(rng.integers(0, 256, (*lead, batch, patch * s, patch * s, m.channels), dtype=np.uint8))}

  def one_call():
    carry["state"], metrics = step(carry["state"], data)
    return metrics
  one_call.state_leaves = lambda: leaves(carry["state"])
  return one_call, 3 * registry.flops_per_output_pixel(m) * batch * (patch * s) ** 2


def infer_call(model_cfg, size: int, graphdef=None, params=None, tile: int = 0):
  """An upscale of a fixed random ``size``² uint8 image (random weights unless given)."""
  if graphdef is None:
    graphdef, params = nnx.split(registry.build_generator(model_cfg))
  lr = np.random.default_rng(0).integers(0, 256, (size, size, model_cfg.channels), np.uint8)
  up = upscaler.Upscaler(graphdef, params, model_cfg, tile=tile)
  return lambda: up(lr)
