"""The train state and how a config makes one: parameters, optimizer states, the optional discriminator.

``TrainState`` is a pytree (checkpointed whole by Orbax). ``Optimizers.from_config`` builds the optax
transformations once; ``init_fn`` returns a function that creates a fresh state (jit it with the sharding you
want); ``abstract_state`` gives the shapes to restore a checkpoint into without allocating.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import nnx, struct

from sr_jax.models import registry
from sr_jax.training import optim


@struct.dataclass
class DiscState:
  """Discriminator parameters and optimizer state (adversarial training only)."""
  params: nnx.State
  opt_state: optax.OptState


@struct.dataclass
class TrainState:
  step: jax.Array  # int32 scalar: optimizer steps done.
  params: nnx.State
  opt_state: optax.OptState
  first_bad_step: jax.Array  # int32 scalar: first step with a non-finite loss/gradient, -1 if none.
  disc: DiscState | None = None  # Present when config.loss.adversarial > 0.
  # Exponential moving average of ``params`` (config.train.ema_decay > 0; Real-ESRGAN: 0.999), updated after
  # every optimizer step; validation, evaluation and upscaling use it when present.
  ema_params: nnx.State | None = None
  # The discriminator's non-trained state: spectral norm's u, v (the U-Net discriminator); None otherwise. A
  # top-level field (not in DiscState) so checkpoints written before it existed still restore.
  disc_stats: nnx.State | None = None

  def eval_params(self) -> nnx.State:
    """The weights to validate: the EMA when kept, else the raw parameters."""
    return self.params if self.ema_params is None else self.ema_params


def create_state(params: nnx.State, tx: optax.GradientTransformation, disc_params: nnx.State | None = None,
                 disc_tx: optax.GradientTransformation | None = None, ema: bool = False,
                 disc_stats: nnx.State | None = None) -> TrainState:
  """A fresh state; with ``ema`` the average starts as a copy of ``params`` (BasicSR's model_ema(0))."""
  disc = None if disc_params is None else DiscState(disc_params, disc_tx.init(disc_params))
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                    first_bad_step=jnp.full((), -1, jnp.int32), disc=disc, disc_stats=disc_stats,
                    ema_params=jax.tree.map(jnp.copy, params) if ema else None)


@dataclasses.dataclass(frozen=True)
class Optimizers:
  tx: optax.GradientTransformation
  schedule: optax.Schedule
  disc_tx: optax.GradientTransformation | None  # None unless the run is adversarial.

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict) -> "Optimizers":
    tx, schedule = optim.make_optimizer(config.train)
    disc_tx = optim.make_optimizer(optim.discriminator_config(config))[0] if registry.uses_gan(config) else None
    return cls(tx, schedule, disc_tx)


def init_fn(config: ml_collections.ConfigDict, opt: Optimizers) -> Callable[[], TrainState]:
  """A function building the fresh TrainState of ``config`` (seeded by config.seed)."""

  def init() -> TrainState:
    params = nnx.state(registry.build_generator(config.model, config.seed))
    disc, stats = None, None
    if opt.disc_tx is not None:
      model = registry.build_discriminator(config, config.seed)
      disc = nnx.state(model, nnx.Param)
      stats = nnx.state(model, registry.DiscriminatorState)
      stats = stats if nnx.to_flat_state(stats) else None
    return create_state(params, opt.tx, disc, opt.disc_tx, ema=config.train.ema_decay > 0, disc_stats=stats)

  return init


def abstract_state(config: ml_collections.ConfigDict, sharding: jax.sharding.Sharding) -> TrainState:
  """Shapes and dtypes of the TrainState of ``config``, placed with ``sharding`` (a restore target)."""
  shapes = jax.eval_shape(init_fn(config, Optimizers.from_config(config)))
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), shapes)
