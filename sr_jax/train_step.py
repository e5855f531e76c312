"""Pure training/evaluation steps: no files, no flags, no host round-trips.

The model is handled functionally (flax examples/gemma style): ``graphdef`` is static, the parameters are an
``nnx.State`` pytree inside ``TrainState``, and ``train_step`` merges them inside jit. The step skips the
update when the loss or gradients are not finite and records the first such step in the state, so the driver
can stop with the step number at its next check without any per-step synchronisation.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from flax import nnx, struct


@struct.dataclass
class TrainState:
  step: jax.Array  # int32 scalar: optimizer steps done.
  params: nnx.State
  opt_state: optax.OptState
  first_bad_step: jax.Array  # int32 scalar: first step with a non-finite loss/gradient, -1 if none.


def create_state(params: nnx.State, tx: optax.GradientTransformation) -> TrainState:
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                    first_bad_step=jnp.full((), -1, jnp.int32))


PIXEL_LOSSES: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
    "l1": lambda pred, target: jnp.mean(jnp.abs(pred - target)),
    "mse": lambda pred, target: jnp.mean(jnp.square(pred - target)),
}


def to_unit(x: jax.Array) -> jax.Array:
  """uint8 pixels -> float32 in [0, 1]."""
  return x.astype(jnp.float32) / 255.0


def loss_terms(pred: jax.Array, target: jax.Array, weights: dict[str, float]) -> dict[str, jax.Array]:
  return {name: PIXEL_LOSSES[name](pred, target) for name, w in weights.items() if w}


def train_step(state: TrainState, batch: dict[str, jax.Array], *, graphdef: nnx.GraphDef,
               tx: optax.GradientTransformation, loss_weights: dict[str, float],
               learning_rate_fn: Callable[[jax.Array], jax.Array]) -> tuple[TrainState, dict[str, Any]]:
  lr_img, hr_img = to_unit(batch["lr"]), to_unit(batch["hr"])

  def loss_fn(params):
    pred = nnx.merge(graphdef, params)(lr_img)
    terms = loss_terms(pred, hr_img, loss_weights)
    return sum(loss_weights[k] * v for k, v in terms.items()), terms

  (loss, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  grad_norm = optax.tree.norm(grads)
  finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
  updates, new_opt_state = tx.update(grads, state.opt_state, state.params)
  new_params = optax.apply_updates(state.params, updates)
  # Non-finite step: keep the old parameters and optimizer state, remember where it happened.
  keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)
  step = state.step + 1
  new_state = state.replace(
      step=step,
      params=keep(new_params, state.params),
      opt_state=keep(new_opt_state, state.opt_state),
      first_bad_step=jnp.where((state.first_bad_step < 0) & ~finite, step, state.first_bad_step))
  metrics = {"loss": loss, "grad_norm": grad_norm, "learning_rate": learning_rate_fn(state.step),
             **{f"loss_{k}": v for k, v in terms.items()}}
  return new_state, metrics


def predict(params: nnx.State, lr_img: jax.Array, *, graphdef: nnx.GraphDef) -> jax.Array:
  """uint8 (or [0, 1] float) LR batch -> SR batch as float [0, 1], unclipped."""
  x = to_unit(lr_img) if lr_img.dtype == jnp.uint8 else lr_img
  return nnx.merge(graphdef, params)(x)
