"""End-to-end behaviour of train_and_evaluate on the tiny config (8 fake CPU devices)."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sr_jax import losses, metrics
from sr_jax.image import imresize
from sr_jax.models import rdn, registry
from sr_jax.training import config_lib, optim, state as state_lib, train, train_step


def _params(state):
  return [np.asarray(x) for x in jax.tree.leaves(jax.device_get(state.params))]


def test_one_device_equals_eight_devices(test_config, tmp_path):
  results = []
  for n in (1, 8):
    test_config.train.num_devices = n
    results.append(_params(train.train_and_evaluate(test_config, str(tmp_path / f"d{n}"))))
  for a, b in zip(*results):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
  losses = []
  for n in (1, 8):
    with open(tmp_path / f"d{n}" / "validation.json") as f:
      losses.append([h["sets"]["chelsea"]["psnr"] for h in json.load(f)["history"]])
  np.testing.assert_allclose(losses[0], losses[1], atol=1e-3)


def test_interrupted_run_resumes_to_identical_parameters(test_config, tmp_path, crash_after):
  test_config.train.num_devices = 2
  full = _params(train.train_and_evaluate(test_config, str(tmp_path / "full")))
  # Crash after step 5: the last checkpoint is step 3, so steps 4-5 are redone on resume.
  crash_after(5)
  with pytest.raises(RuntimeError, match="simulated crash"):
    train.train_and_evaluate(test_config, str(tmp_path / "crash"))
  crash_after(None)
  assert sorted(os.listdir(tmp_path / "crash" / "checkpoints")) == ["3"]
  resumed = _params(train.train_and_evaluate(test_config, str(tmp_path / "crash")))
  for a, b in zip(full, resumed):
    np.testing.assert_array_equal(a, b)
  with open(tmp_path / "crash" / "validation.json") as f:
    assert [h["step"] for h in json.load(f)["history"]] == [3, 6]


def test_steps_fused_per_dispatch_equal_single_steps(test_config, tmp_path):
  """lax.scan over 3 batches per call trains the same parameters as 3 separate calls, on a 2-device mesh."""
  test_config.train.num_devices = 2
  single = _params(train.train_and_evaluate(test_config, str(tmp_path / "k1")))
  test_config.train.steps_per_dispatch = 3
  test_config.log_every = 3
  fused_state = train.train_and_evaluate(test_config, str(tmp_path / "k3"))
  assert int(fused_state.step) == test_config.train.num_steps
  for a, b in zip(single, _params(fused_state)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  test_config.train.steps_per_dispatch = 4
  with pytest.raises(config_lib.ConfigError, match="train.num_steps=6.*multiple of train.steps_per_dispatch=4"):
    train.train_and_evaluate(test_config, str(tmp_path / "k4"))


@pytest.mark.parametrize("unroll", [True, False])
def test_scan_steps_rolled_or_unrolled_equal_sequential_steps(unroll):
  from flax import nnx
  model = rdn.RDN(scale=2, num_blocks=1, num_layers=2, growth=4, features=4, rngs=nnx.Rngs(0))
  graphdef, params = nnx.split(model)
  tx = optax.adam(1e-3)
  loss = losses.GeneratorLoss((("l1", 1.0),))
  step = lambda s, b, f: train_step.train_step(s, b, f, graphdef=graphdef, tx=tx, loss=loss,
                                               learning_rate_fn=lambda n: 1e-3)
  rng = np.random.default_rng(0)
  batches = {"lr": rng.integers(0, 256, (3, 2, 6, 6, 3), dtype=np.uint8),
             "hr": rng.integers(0, 256, (3, 2, 12, 12, 3), dtype=np.uint8)}
  seq = state_lib.create_state(params, tx)
  for i in range(3):
    seq, _ = jax.jit(step)(seq, {k: v[i] for k, v in batches.items()}, {})
  fused, metrics = jax.jit(lambda s, b: train_step.scan_steps(step, s, b, {}, unroll=unroll))(
      state_lib.create_state(params, tx), batches)
  assert int(fused.step) == 3 and metrics["loss"].shape == (3,)
  for a, b in zip(_params(seq), _params(fused)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_finished_run_is_not_redone(test_config, tmp_path):
  state = train.train_and_evaluate(test_config, str(tmp_path))
  stamp = os.path.getmtime(tmp_path / "validation.json")
  again = train.train_and_evaluate(test_config, str(tmp_path))
  assert int(again.step) == int(state.step) == test_config.train.num_steps
  assert os.path.getmtime(tmp_path / "validation.json") == stamp
  for a, b in zip(_params(state), _params(again)):
    np.testing.assert_array_equal(a, b)


def test_workdir_of_another_model_is_refused(test_config, tmp_path):
  test_config.train.num_steps = 3
  train.train_and_evaluate(test_config, str(tmp_path))
  test_config.model.scale = 3
  with pytest.raises(config_lib.ConfigError, match="model.scale: workdir has 2, config has 3"):
    train.train_and_evaluate(test_config, str(tmp_path))


def test_nan_loss_stops_with_step_and_keeps_last_good_checkpoint(test_config, tmp_path):
  test_config.train.learning_rate = 1e38  # Overflows to Inf/NaN after the first update.
  test_config.loss.l1, test_config.loss.mse = 0.0, 1.0
  test_config.log_every = 1
  test_config.train.num_devices = 1
  with pytest.raises(train.NonFiniteLossError, match=r"NaN/Inf at step (\d+)") as err:
    train.train_and_evaluate(test_config, str(tmp_path))
  assert "step 2" in str(err.value) or "step 3" in str(err.value)
  assert not os.path.exists(tmp_path / "checkpoints" / "6")


def test_overfits_a_fixed_batch_well_above_bicubic():
  """A small RDN trained on one batch must beat bicubic on it by a wide margin."""
  from sr_jax.configs import test as test_cfg
  from sr_jax.data import datasets, input_pipeline
  config = test_cfg.get_config()
  config.model.update(num_blocks=2, num_layers=3, growth=16, features=16)
  config.train.update(learning_rate=2e-3, num_steps=400)
  images = datasets.load_source("skimage:astronaut", min_size=64)
  batch = next(input_pipeline.train_dataset(images, patch_size=12, scale=2, global_batch=4, seed=0)
               .as_numpy_iterator())
  tx, schedule = optim.make_optimizer(config.train)
  from flax import nnx
  graphdef, params = nnx.split(registry.build_generator(config.model))
  state = state_lib.create_state(params, tx)
  loss = losses.GeneratorLoss((("l1", 1.0),))
  step = jax.jit(lambda s, b: train_step.train_step(s, b, {}, graphdef=graphdef, tx=tx, loss=loss,
                                                    learning_rate_fn=schedule))
  for _ in range(config.train.num_steps):
    state, _ = step(state, batch)
  sr = np.asarray(registry.predict(state.params, jnp.asarray(batch["lr"]), graphdef=graphdef))
  bic = np.stack([imresize.to_uint8(imresize.imresize(lr / 255.0, 2)) for lr in batch["lr"]])
  # PSNR of the whole batch (patches stacked into one image): single 24-px patches are too noisy alone.
  stack = lambda x: np.asarray(x).reshape(-1, x.shape[2], x.shape[3])
  gain = (metrics.psnr(stack(imresize.to_uint8(sr)), stack(batch["hr"]), shave=0)
          - metrics.psnr(stack(bic), stack(batch["hr"]), shave=0))
  assert gain > 3.0, gain


def test_the_eta_is_smoothed_over_the_run_from_the_first_log_point(test_config):
  from sr_jax.training import train as train_lib
  clock = iter([0.0, 100.0, 110.0, 200.0])  # Compilation, then 10 s for steps 2-4, then a slow 90 s for 4-6.
  test_config.train.num_steps = 10
  log = train_lib.TrainLog(test_config, 0, clock=lambda: next(clock))
  step_metrics = {"loss": np.float32(1), "learning_rate": np.float32(1e-3)}
  for step in (2, 4, 6):
    log.add(step_metrics)
    log.flush(step)
    if step == 2:
      assert log.eta(2, 100.0) == ""  # No estimate from the compiling interval.
  # Over the run so far (steps 2..6 in 100 s: 25 s a step), 4 steps left: 100 s, not the last interval's 180 s.
  assert log.eta(6, 200.0) == "  ETA 1m40s"


def test_a_line_comes_at_the_first_step_and_at_least_once_a_minute(test_config):
  from sr_jax.training import train as train_lib
  now = [0.0]
  test_config.train.num_steps = 1000
  test_config.log_every = 500
  log = train_lib.TrainLog(test_config, 0, clock=lambda: now[0])
  assert log.due()  # The first step: its line times the compilation.
  log.add({"loss": np.float32(1), "learning_rate": np.float32(1e-3)})
  now[0] = 45.0
  log.flush(1)
  now[0] = 104.0
  assert not log.due()
  now[0] = 105.0
  assert log.due()  # A minute without a line (steps slower than log_every's spacing).


def test_the_heartbeat_speaks_every_ten_seconds_not_every_item():
  from sr_jax.core import heartbeat
  now, said = [0.0], []
  beat = heartbeat.Heartbeat(said.append, clock=lambda: now[0])
  for t in (1, 5, 9.9, 10.0, 12, 19, 20.5):
    now[0] = t
    beat.beat(lambda: f"at {t}")
  assert said == ["at 10.0 (10 s)", "at 20.5 (20 s)"]
