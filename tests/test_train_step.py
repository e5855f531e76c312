"""training/train_step.py: gradient accumulation (micro-batches give the whole batch's update; what it
refuses; an interrupted accumulating run resumes exactly)."""

import jax
import numpy as np
import optax
import pytest

from sr_jax.configs import test as test_cfg
from sr_jax.training import config_lib, state as state_lib, train_step


def _one_step(config, batch):
  opt = state_lib.Optimizers.from_config(config)
  step, frozen = train_step.build(config, opt)
  state = jax.jit(state_lib.init_fn(config, opt))()
  return jax.jit(step)(state, batch, frozen)


@pytest.mark.parametrize("gan_loss", [None, "vanilla", "hinge"])
def test_accumulated_micro_batches_give_the_whole_batch_update(gan_loss):
  config = test_cfg.get_config()
  # adam_eps 1: the update is ~ lr * gradient, so float rounding of near-zero gradients is not blown up to a
  # whole Adam step (lr * sign) and the comparison tests the gradients.
  config.train.update(batch_size=8, ema_decay=0.9, adam_eps=1.0)
  config.loss.update(l1=1.0, ssim=0.5)
  if gan_loss:
    config.loss.adversarial = 0.1
    config.gan.update(features=8, discriminator="unet_sn", loss=gan_loss)
  rng = np.random.default_rng(3)
  p, s = config.data.patch_size, config.model.scale
  batch = {"lr": rng.integers(0, 256, (8, p, p, 3), dtype=np.uint8),
           "hr": rng.integers(0, 256, (8, p * s, p * s, 3), dtype=np.uint8)}
  results = []
  for n in (1, 4):
    config.train.grad_accum_steps = n
    config_lib.validate(config, num_devices=1)
    results.append(_one_step(config, batch))
  (whole, m1), (accum, m4) = results
  for key in m1:
    assert float(m4[key]) == pytest.approx(float(m1[key]), rel=1e-5, abs=1e-7), key
  for a, b in zip(jax.tree.leaves(whole), jax.tree.leaves(accum)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_accumulation_refuses_ragan_and_batches_it_cannot_split():
  config = test_cfg.get_config()
  config.train.grad_accum_steps = 2
  config.loss.adversarial = 0.1
  config.gan.update(features=8, num_stages=2)
  with pytest.raises(config_lib.ConfigError, match="gan.loss='ragan'"):
    config_lib.validate(config)
  config.gan.loss = "hinge"
  with pytest.raises(config_lib.ConfigError, match="gan.discriminator='patch': its batch normalisation"):
    config_lib.validate(config)
  config.loss.adversarial = 0.0
  config.train.batch_size = 12
  with pytest.raises(config_lib.ConfigError, match=r"grad_accum_steps x devices = 2 x 4"):
    config_lib.validate(config, num_devices=4)


def test_interrupted_accumulating_run_resumes_to_identical_parameters(resumes_identically):
  config = test_cfg.get_config()
  config.train.update(num_devices=2, grad_accum_steps=2)
  full = resumes_identically(config)
  assert isinstance(optax.tree.norm(full.params), jax.Array)
