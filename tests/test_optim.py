"""training/optim.py: the optimisers and schedules from config.train."""

import jax.numpy as jnp
import numpy as np
import pytest

from sr_jax.configs import test as test_cfg
from sr_jax.training import config_lib, optim


def test_adamw_is_adam_plus_decoupled_weight_decay():
  cfg = test_cfg.get_config().train
  params = {"w": jnp.asarray(np.random.default_rng(0).normal(size=(4, 3)), jnp.float32)}
  grads = {"w": jnp.asarray(np.random.default_rng(1).normal(size=(4, 3)), jnp.float32)}
  adam, _ = optim.make_optimizer(cfg)
  cfg.optimizer, cfg.weight_decay = "adamw", 0.05
  adamw, _ = optim.make_optimizer(cfg)
  ua, _ = adam.update(grads, adam.init(params), params)
  uw, _ = adamw.update(grads, adamw.init(params), params)
  # torch.optim.AdamW: p <- p - lr * (adam_step + weight_decay * p).
  np.testing.assert_allclose(uw["w"], ua["w"] - cfg.learning_rate * 0.05 * params["w"], rtol=1e-6, atol=1e-8)
  with pytest.raises(config_lib.ConfigError, match="train.optimizer='adamw'"):
    c = test_cfg.get_config()
    c.train.weight_decay = 0.01
    config_lib.validate(c)
