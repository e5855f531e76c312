"""Pure training/evaluation steps: no files, no flags, no host round-trips.

The model is handled functionally (flax examples/gemma style): ``graphdef`` is static, the parameters are an
``nnx.State`` pytree inside ``TrainState``, and ``train_step`` merges them inside jit. ``build(config, opt)``
binds the step to a config; it is the only part that reads files (the perceptual loss's VGG weights, so a
missing file fails before anything compiles). The step skips the
update when the loss or gradients are not finite and records the first such step in the state, so the driver
can stop with the step number at its next check without any per-step synchronisation.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import nnx

from sr_jax import losses
from sr_jax.models import registry
from sr_jax.training.state import DiscState, Optimizers, TrainState


DROP_PATH_STREAM = 0xD9  # Keeps the stochastic-depth keys apart from other uses of config.seed.


to_unit = registry.to_unit


def _apply(tx, grads, opt_state, params, finite):
  """Optimizer update; a non-finite step keeps the old parameters and optimizer state."""
  updates, new_opt_state = tx.update(grads, opt_state, params)
  new_params = optax.apply_updates(params, updates)
  keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)
  return keep(new_params, params), keep(new_opt_state, opt_state)


def _merge_disc(graphdef: nnx.GraphDef, params: nnx.State, stats: nnx.State | None) -> nnx.Module:
  return nnx.merge(graphdef, params) if stats is None else nnx.merge(graphdef, params, stats)


def _power_iteration(disc: DiscState, stats: nnx.State | None, graphdef: nnx.GraphDef) -> nnx.State | None:
  """Spectral norm's state after this step's two power iterations (PyTorch: one per forward, real and fake)."""
  if stats is None:
    return None
  model = _merge_disc(graphdef, disc.params, stats)
  model.power_iteration(2)
  return nnx.state(model, registry.DiscriminatorState)


def _disc_grads(disc: DiscState, stats: nnx.State | None, hr_img: jax.Array, fake: jax.Array,
                graphdef: nnx.GraphDef, d_adv: Callable):
  """(loss, gradients, real logits, fake logits) of the discriminator (``stats``: after the power iteration)."""

  def d_loss_fn(d_params):
    model = _merge_disc(graphdef, d_params, stats)
    real_logits, fake_logits = model(hr_img), model(fake)
    return d_adv(real_logits, fake_logits), (real_logits, fake_logits)

  (d_loss, (real_logits, fake_logits)), grads = jax.value_and_grad(d_loss_fn, has_aux=True)(disc.params)
  return d_loss, grads, real_logits, fake_logits


def ema_decay_at(step: jax.Array, decay: float) -> jax.Array:
  """TensorFlow's ExponentialMovingAverage with num_updates: min(decay, (1 + t) / (10 + t)). Early steps average
  over fewer steps, so a short run's average is not dominated by its random initial weights (with a fixed 0.999
  they would still weigh 5% after 3000 steps); after ~10 / (1 - decay) steps it is the fixed decay BasicSR uses."""
  t = step.astype(jnp.float32)
  return jnp.minimum(decay, (1.0 + t) / (10.0 + t))


def _update_disc(state: TrainState, grads, stats: nnx.State | None, disc_tx, finite: jax.Array
                 ) -> tuple[DiscState, nnx.State | None]:
  """The discriminator after its update (none when the step is not finite) and its spectral-norm state."""
  d_params, d_opt = _apply(disc_tx, grads, state.disc.opt_state, state.disc.params, finite)
  if stats is not None:
    stats = jax.tree.map(lambda n, o: jnp.where(finite, n, o), stats, state.disc_stats)
  return DiscState(d_params, d_opt), stats


def _ema_update(state: TrainState, params: nnx.State, decay: float, finite: jax.Array) -> nnx.State | None:
  """The EMA after this step (a skipped, non-finite step leaves params, hence the average, unchanged)."""
  if state.ema_params is None:
    return None
  d = ema_decay_at(state.step, decay)
  # e + (1 - d) (p - e), not d e + (1 - d) p: one multiply-add, so the last bit does not depend on which of two
  # products LLVM contracts into an FMA, which changes with XLA's fusion (how the state crosses the jit boundary,
  # core/boundary.py, must not change the result).
  return jax.tree.map(lambda e, p: jnp.where(finite, e + (1.0 - d) * (p - e), e), state.ema_params, params)


def _micro_batches(x: jax.Array, n: int) -> jax.Array:
  """(B, ...) -> (n, B / n, ...): micro-batch i holds rows i, n + i, 2n + i, ... Each device's contiguous block
  of rows splits into whole groups (B a multiple of n x devices), so no data moves between devices."""
  return jnp.swapaxes(x.reshape(x.shape[0] // n, n, *x.shape[1:]), 0, 1)


def _accumulate(fn: Callable, n: int, *xs: jax.Array) -> dict:
  """The mean over ``n`` micro-batches of ``fn(*micro_batch)`` (a pytree of losses and gradients), run one after
  another (unrolled on CPU, where XLA's loops are slow; a loop elsewhere, so only one micro-batch is live)."""
  if n == 1:
    return fn(*xs)
  parts = [_micro_batches(x, n) for x in xs]
  zeros = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), jax.eval_shape(fn, *(p[0] for p in parts)))
  total, _ = jax.lax.scan(lambda acc, mb: (jax.tree.map(jnp.add, acc, fn(*mb)), None), zeros, tuple(parts),
                          unroll=jax.default_backend() == "cpu")
  return jax.tree.map(lambda a: a / n, total)


def drop_path_keys(seed: int, step: jax.Array, batch_size: int) -> jax.Array:
  """Stochastic depth's keys (SwinIR/HAT with model.drop_path_rate > 0): one per image, a function of the seed,
  the step and the image's row in the batch alone, so the draws do not depend on devices, micro-batches or
  restarts (an accumulating run draws what the whole batch would)."""
  step_key = jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), DROP_PATH_STREAM), step)
  return jax.vmap(jax.random.fold_in, (None, 0))(step_key, jnp.arange(batch_size))


def train_step(state: TrainState, batch: dict[str, jax.Array], frozen: dict, *, graphdef: nnx.GraphDef,
               tx: optax.GradientTransformation, loss: losses.GeneratorLoss,
               learning_rate_fn: Callable[[jax.Array], jax.Array], disc_graphdef: nnx.GraphDef | None = None,
               disc_tx: optax.GradientTransformation | None = None, ema_decay: float = 0.0,
               gan_loss: str = "ragan", grad_accum_steps: int = 1, drop_path_seed: int | None = None
               ) -> tuple[TrainState, dict[str, Any]]:
  """One generator update, then (adversarial training) one discriminator update on the same batch; the EMA of
  the generator's parameters (when the state keeps one) follows the update: ema = d_t * ema + (1 - d_t) * params
  with d_t = min(d, (1 + t) / (10 + t)) at step t (``ema_decay_at``). With ``grad_accum_steps`` = n > 1 both
  networks' losses and gradients are the means over n micro-batches of the batch (``_accumulate``).

  ``frozen`` holds arrays the losses read but never train (the perceptual VGG): an argument, so they are
  neither baked into the compiled program nor differentiated nor in any optimizer state.
  ``drop_path_seed``: stochastic depth on, with ``drop_path_keys``.
  """
  gan = state.disc is not None
  g_adv, d_adv = losses.GAN_LOSSES[gan_loss]
  d_stats = _power_iteration(state.disc, state.disc_stats, disc_graphdef) if gan else state.disc_stats

  def micro(lr_u8, hr_u8, *keys):  # keys: (per-image keys,) with stochastic depth, else ().
    lr_img, hr_img = to_unit(lr_u8), to_unit(hr_u8)
    ema_pred = jax.lax.stop_gradient(nnx.merge(graphdef, state.ema_params)(lr_img)) if loss.needs_ema else None

    def g_loss_fn(params):
      pred = nnx.merge(graphdef, params)(lr_img, *keys)
      terms = loss.terms(pred, hr_img, frozen, ema_pred)
      if gan:  # ESRGAN: the discriminator is fixed during the generator update.
        disc = _merge_disc(disc_graphdef, jax.lax.stop_gradient(state.disc.params), d_stats)
        terms["adversarial"] = g_adv(jax.lax.stop_gradient(disc(hr_img)), disc(pred))
      return loss.total(terms), (terms, pred)

    (total, (terms, pred)), grads = jax.value_and_grad(g_loss_fn, has_aux=True)(state.params)
    out = {"total": total, "terms": terms, "grads": grads}
    if gan:
      d_loss, d_grads, real_logits, fake_logits = _disc_grads(
          state.disc, d_stats, hr_img, jax.lax.stop_gradient(pred), disc_graphdef, d_adv)
      out.update(d_loss=d_loss, d_grads=d_grads, real=jnp.mean(real_logits), fake=jnp.mean(fake_logits))
    return out

  keys = () if drop_path_seed is None else (drop_path_keys(drop_path_seed, state.step, batch["lr"].shape[0]),)
  out = _accumulate(micro, grad_accum_steps, batch["lr"], batch["hr"], *keys)
  total, grads = out["total"], out["grads"]
  grad_norm = optax.tree.norm(grads)
  finite = jnp.isfinite(total) & jnp.isfinite(grad_norm)
  metrics = {"loss": total, "grad_norm": grad_norm, "learning_rate": learning_rate_fn(state.step),
             **{f"loss_{k}": v for k, v in out["terms"].items()}}
  new_disc = state.disc
  if gan:
    d_grad_norm = optax.tree.norm(out["d_grads"])
    finite = finite & jnp.isfinite(out["d_loss"]) & jnp.isfinite(d_grad_norm)
    new_disc, d_stats = _update_disc(state, out["d_grads"], d_stats, disc_tx, finite)
    metrics.update(disc_loss=out["d_loss"], disc_grad_norm=d_grad_norm, disc_real_logit=out["real"],
                   disc_fake_logit=out["fake"])
  params, opt_state = _apply(tx, grads, state.opt_state, state.params, finite)
  ema = _ema_update(state, params, ema_decay, finite)
  step = state.step + 1
  new_state = state.replace(
      step=step, params=params, opt_state=opt_state, disc=new_disc, ema_params=ema, disc_stats=d_stats,
      first_bad_step=jnp.where((state.first_bad_step < 0) & ~finite, step, state.first_bad_step))
  return new_state, metrics


def scan_steps(step_fn, state: TrainState, batches: dict, frozen: dict, *, unroll: bool | None = None
               ) -> tuple[TrainState, dict]:
  """len(batches) optimizer steps in one call (batches carry a leading step axis); metrics come back stacked.

  XLA:CPU runs a train step inside a while loop about 8x slower than the same step alone (measured with the
  quickstart model), so on CPU the scan is unrolled (compile time grows with the step count); elsewhere it
  stays a loop (``unroll`` None: decide by backend).
  """
  if unroll is None:
    unroll = jax.default_backend() == "cpu"
  return jax.lax.scan(lambda s, b: step_fn(s, b, frozen), state, batches, unroll=unroll)


def build(config: ml_collections.ConfigDict, opt: Optimizers) -> tuple[Callable, dict]:
  """(step(state, batch, frozen), frozen arrays) for ``config``.

  With train.steps_per_dispatch=K > 1 the step runs K optimizer steps over a batch with a leading axis of K.
  """
  loss, frozen = losses.build(config)
  disc_graphdef = registry.discriminator_graphdef(config) if opt.disc_tx is not None else None
  step = functools.partial(train_step, graphdef=registry.generator_graphdef(config.model), tx=opt.tx, loss=loss,
                           learning_rate_fn=opt.schedule, disc_graphdef=disc_graphdef, disc_tx=opt.disc_tx,
                           ema_decay=float(config.train.ema_decay), gan_loss=config.gan.loss,
                           grad_accum_steps=int(config.train.grad_accum_steps),
                           drop_path_seed=int(config.seed) if config.model.drop_path_rate > 0 else None)
  if config.train.steps_per_dispatch > 1:
    step = functools.partial(scan_steps, step)
  return step, frozen
