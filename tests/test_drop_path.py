"""Stochastic depth of SwinIR and HAT (model.drop_path_rate): BasicSR's drop_path per sample, the references'
linear per-layer rates, off without keys (inference, evaluation, exports), and in the train step a function of
seed, step and the image's row, so accumulated micro-batches draw what the whole batch draws."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from sr_jax.configs import test as test_cfg
from sr_jax.models import registry, swinir
from sr_jax.training import config_lib, state as state_lib, train_step

SWINIR = dict(name="swinir", num_blocks=2, num_layers=2, features=16, num_heads=2, window_size=4)
HAT = dict(name="hat", num_blocks=1, num_layers=2, features=24, num_heads=3, window_size=4, compress_ratio=3,
           squeeze=6)


def test_drop_path_drops_whole_samples_at_its_rate_and_rescales_the_rest():
  x = jnp.asarray(np.random.default_rng(0).uniform(1, 2, (4000, 3, 2, 5)), jnp.float32)
  keys = jax.random.split(jax.random.key(7), 4000)
  y = np.asarray(swinir.drop_path(x, 0.25, keys))
  dropped = np.all(y == 0, axis=(1, 2, 3))
  assert abs(dropped.mean() - 0.25) < 0.03  # 4000 draws: 0.0068 standard deviation.
  np.testing.assert_allclose(y[~dropped], np.asarray(x)[~dropped] / 0.75, rtol=1e-6)  # Kept whole, rescaled.
  assert np.array_equal(np.asarray(swinir.drop_path(x, 0.25, keys)), y)  # The keys decide.
  assert swinir.drop_path(x, 0.25, None) is x and swinir.drop_path(x, 0.0, keys) is x


@pytest.mark.parametrize("fields", [SWINIR, HAT], ids=["swinir", "hat"])
def test_rates_rise_over_the_layers_and_only_keys_switch_it_on(fields):
  m = test_cfg.get_config().model
  m.update(**fields, drop_path_rate=0.3)
  model = registry.build_generator(m, seed=3)
  rates = [block.drop_path for layer in model.layers for block in layer.blocks]
  np.testing.assert_allclose(rates, np.linspace(0, 0.3, len(rates)))  # torch.linspace(0, rate, depth).
  m0 = m.copy_and_resolve_references()
  m0.drop_path_rate = 0.0
  plain = registry.build_generator(m0, seed=3)
  x = jnp.asarray(np.random.default_rng(1).uniform(0, 1, (6, 9, 11, 3)), jnp.float32)
  np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(plain(x)))  # Same parameters, no keys: equal.
  keys = jax.random.split(jax.random.key(0), 6)
  trained = np.asarray(model(x, keys))
  assert not np.allclose(trained, np.asarray(model(x)), atol=1e-4)
  np.testing.assert_array_equal(trained, np.asarray(model(x, keys)))
  # Per sample: image 0 alone with its key is what it was in the batch.
  np.testing.assert_allclose(np.asarray(model(x[:1], keys[:1]))[0], trained[0], atol=1e-5)


def _config(drop_path_rate: float, accum: int = 1):
  config = test_cfg.get_config()
  config.model.update(**SWINIR, drop_path_rate=drop_path_rate)
  config.train.update(batch_size=8, adam_eps=1.0, grad_accum_steps=accum)
  config_lib.validate(config, num_devices=1)
  return config


def _step(config, batch):
  opt = state_lib.Optimizers.from_config(config)
  step, frozen = train_step.build(config, opt)
  state = jax.jit(state_lib.init_fn(config, opt))()
  before = jax.tree.map(np.asarray, state.params)
  state, metrics = jax.jit(step)(state, batch, frozen)
  return jax.tree.map(lambda a, b: np.asarray(a) - b, state.params, before), float(metrics["loss"])


def test_train_step_draws_per_image_so_accumulation_and_reruns_agree():
  rng = np.random.default_rng(3)
  batch = {"lr": rng.integers(0, 256, (8, 8, 8, 3), dtype=np.uint8),
           "hr": rng.integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)}
  whole, loss = _step(_config(0.5), batch)
  accumulated, loss4 = _step(_config(0.5, accum=4), batch)
  assert loss4 == pytest.approx(loss, rel=1e-5)
  for a, b in zip(jax.tree.leaves(whole), jax.tree.leaves(accumulated)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
  again, loss_again = _step(_config(0.5), batch)
  assert loss_again == loss and all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(whole),
                                                                        jax.tree.leaves(again)))
  off, _ = _step(_config(0.0), batch)  # It acts: a dropped branch gets no gradient from that image.
  last_mlp = whole["layers"][1]["blocks"][1]["fc2"]["bias"][...], off["layers"][1]["blocks"][1]["fc2"]["bias"][...]
  assert np.abs(last_mlp[0] - last_mlp[1]).max() > 0.2 * np.abs(last_mlp[1]).max()


def test_rate_is_validated_and_refused_where_no_layer_drops():
  config = test_cfg.get_config()
  config.model.drop_path_rate = 0.1
  with pytest.raises(config_lib.ConfigError, match=r"model.drop_path_rate=0.1 .* 0 for model.name='rdn'"):
    config_lib.validate(config)
  config.model.update(**SWINIR, drop_path_rate=1.0)
  with pytest.raises(config_lib.ConfigError, match=r"a rate in \[0, 1\)"):
    config_lib.validate(config)


def test_interrupted_run_with_stochastic_depth_resumes_to_identical_parameters(resumes_identically):
  config = test_cfg.get_config()
  config.model.update(**SWINIR, drop_path_rate=0.2)
  config.train.update(num_devices=2)  # The keys are made inside the sharded step.
  full = resumes_identically(config)
  assert int(full.step) == config.train.num_steps
