"""Optimizer and learning-rate schedule from the ``train`` config section."""

from __future__ import annotations

import optax

SCHEDULES = ("step", "cosine", "constant")  # config.train.lr_schedule.
OPTIMIZERS = ("adam", "adamw")  # config.train.optimizer.


def learning_rate_schedule(cfg) -> optax.Schedule:
  """cfg: config.train. 'step' multiplies by lr_decay_factor every lr_decay_steps (the RDN paper)."""
  peak = cfg.learning_rate
  decay_steps = max(1, cfg.num_steps - cfg.warmup_steps)
  if cfg.lr_schedule == "step":
    main = optax.exponential_decay(peak, transition_steps=cfg.lr_decay_steps, decay_rate=cfg.lr_decay_factor,
                                   staircase=True)
  elif cfg.lr_schedule == "cosine":
    main = optax.cosine_decay_schedule(peak, decay_steps=decay_steps)
  elif cfg.lr_schedule == "constant":
    main = optax.constant_schedule(peak)
  else:
    raise ValueError(f"train.lr_schedule={cfg.lr_schedule!r}; accepted: {', '.join(SCHEDULES)}")
  if cfg.warmup_steps <= 0:
    return main
  warmup = optax.linear_schedule(0.0, peak, cfg.warmup_steps)
  return optax.join_schedules([warmup, main], [cfg.warmup_steps])


def make_optimizer(cfg) -> tuple[optax.GradientTransformation, optax.Schedule]:
  schedule = learning_rate_schedule(cfg)
  """(optimizer, schedule) of config.train: Adam, or AdamW with decoupled weight decay (optax.adamw: the update
  is -lr * (adam + weight_decay * param), torch.optim.AdamW's), after optional global-norm clipping."""
  name = cfg.get("optimizer", "adam")
  if name == "adamw":
    tx = optax.adamw(schedule, b1=cfg.adam_b1, b2=cfg.adam_b2, eps=cfg.adam_eps, weight_decay=cfg.weight_decay)
  elif name == "adam":
    tx = optax.adam(schedule, b1=cfg.adam_b1, b2=cfg.adam_b2, eps=cfg.adam_eps)
  else:
    raise ValueError(f"train.optimizer={name!r}; accepted: {', '.join(OPTIMIZERS)}")
  if cfg.grad_clip > 0:
    tx = optax.chain(optax.clip_by_global_norm(cfg.grad_clip), tx)
  return tx, schedule


def discriminator_config(config):
  """config.train with the discriminator's learning rate and Adam betas (``config.gan``), no clipping."""
  cfg = config.train.copy_and_resolve_references()
  cfg.learning_rate = config.gan.learning_rate
  cfg.adam_b1, cfg.adam_b2 = config.gan.adam_b1, config.gan.adam_b2
  cfg.grad_clip = 0.0
  cfg.optimizer, cfg.weight_decay = "adam", 0.0
  return cfg
