"""EMA of the weights (config.train.ema_decay): the average itself, what is checkpointed, who uses it."""

import jax
import numpy as np
import pytest
from flax import nnx

from sr_jax.training import config_lib, state as state_lib, train, train_step
from sr_jax.workdir import run_dir


def _leaves(params) -> list[np.ndarray]:
  return [np.asarray(v[...]) for _, v in nnx.to_flat_state(params)]


def test_ema_equals_the_hand_computed_average(test_config):
  test_config.train.ema_decay = 0.75
  opt = state_lib.Optimizers.from_config(test_config)
  state = jax.jit(state_lib.init_fn(test_config, opt))()
  step_fn, frozen = train_step.build(test_config, opt)
  step_fn = jax.jit(step_fn)
  rng = np.random.default_rng(0)
  expected = _leaves(state.params)  # The average starts as the initial weights.
  np.testing.assert_array_equal(_leaves(state.ema_params)[0], expected[0])
  for t in range(3):
    hr = rng.integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)
    state, _ = step_fn(state, {"lr": hr[:, ::2, ::2], "hr": hr}, frozen)
    d = min(0.75, (1 + t) / (10 + t))  # 0.1, 0.18, 0.25: warm-up, then the configured decay.
    expected = [d * e + (1 - d) * p for e, p in zip(expected, _leaves(state.params))]
  got = _leaves(state.ema_params)
  assert len(got) == len(expected) and int(state.step) == 3
  for g, e in zip(got, expected):
    np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-7)
  assert any(not np.allclose(g, p) for g, p in zip(got, _leaves(state.params)))


def test_ema_is_checkpointed_used_by_default_and_raw_on_request(test_config, tmp_path):
  test_config.train.ema_decay = 0.9
  test_config.train.update(num_devices=1, num_steps=4)
  test_config.update(eval_every=2, checkpoint_every=2)
  final = train.train_and_evaluate(test_config, str(tmp_path))
  run = run_dir.load_run(str(tmp_path), "latest")
  raw = run_dir.load_run(str(tmp_path), "latest", raw_weights=True)
  for a, b in zip(_leaves(run.params), _leaves(final.ema_params)):
    np.testing.assert_array_equal(a, b)  # Restored exactly.
  for a, b in zip(_leaves(raw.params), _leaves(final.params)):
    np.testing.assert_array_equal(a, b)
  assert any(not np.array_equal(a, b) for a, b in zip(_leaves(run.params), _leaves(raw.params)))
  # Starting a run from it (train.init_from) copies the EMA weights, as Real-ESRGAN's second stage does.
  test_config.train.update(ema_decay=0.0, init_from=str(tmp_path))
  state = train.restore_or_init(test_config, None, state_lib.Optimizers.from_config(test_config),
                                jax.sharding.SingleDeviceSharding(jax.devices()[0]))
  for a, b in zip(_leaves(state.params), _leaves(final.ema_params)):
    np.testing.assert_array_equal(a, b)


def test_switching_ema_on_or_off_at_resume_is_refused(test_config, tmp_path):
  test_config.train.update(num_devices=1, num_steps=2)
  test_config.update(eval_every=2, checkpoint_every=2)
  train.train_and_evaluate(test_config, str(tmp_path))
  test_config.train.update(ema_decay=0.999, num_steps=4)
  with pytest.raises(config_lib.ConfigError, match="train.ema_decay: the workdir was trained without EMA"):
    train.train_and_evaluate(test_config, str(tmp_path))
  test_config.train.ema_decay = 1.0
  with pytest.raises(config_lib.ConfigError, match="train.ema_decay"):
    config_lib.validate(test_config)


def test_decay_warms_up_then_is_the_configured_one():
  import jax.numpy as jnp
  from sr_jax.training import train_step
  got = [float(train_step.ema_decay_at(jnp.asarray(t), 0.999)) for t in (0, 10, 1000, 100_000)]
  assert got[0] == pytest.approx(0.1) and got[1] == pytest.approx(11 / 20)
  assert got[2] == pytest.approx(1001 / 1010) and got[3] == pytest.approx(0.999)
