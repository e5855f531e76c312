"""core/boundary.py and training/carried.py: the train state crossing jax.jit packed (one buffer per dtype) or as
a list, and the weights crossing it as a list, give what the pytree boundary gave, bit for bit: each kind of
train step (plain, EMA, accumulating, fused, adversarial with EMA and spectral norm), a whole run and its exact
resumption, validation and upscaling."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from sr_jax.configs import test as test_cfg
from sr_jax.core import boundary
from sr_jax.evaluation import eval_lib
from sr_jax.inference import upscaler
from sr_jax.models import registry
from sr_jax.training import carried as carried_lib, config_lib, state as state_lib, train_step

KINDS = {
    "plain": {},
    "ema": {"train.ema_decay": 0.9},
    "accumulating": {"train.grad_accum_steps": 2},
    "fused": {"train.steps_per_dispatch": 2, "eval_every": 2, "checkpoint_every": 2},
    "adversarial_ema_spectral_norm": {"loss.adversarial": 0.1, "gan.features": 8, "gan.discriminator": "unet_sn",
                                      "gan.loss": "vanilla", "train.ema_decay": 0.9},
}


def _batches(config, n: int):
  rng = np.random.default_rng(5)
  p, s, k = config.data.patch_size, config.model.scale, config.train.steps_per_dispatch
  lead = (k,) if k > 1 else ()
  b = config.train.batch_size
  return [{"lr": jnp.asarray(rng.integers(0, 256, (*lead, b, p, p, 3), dtype=np.uint8)),
           "hr": jnp.asarray(rng.integers(0, 256, (*lead, b, p * s, p * s, 3), dtype=np.uint8))} for _ in range(n)]


def _assert_trees_equal(a, b):
  la, ta = jax.tree.flatten(a)
  lb, tb = jax.tree.flatten(b)
  assert ta == tb
  for x, y in zip(la, lb):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("layout", ["packed", "leaves"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_of_train_step_over_packed_buffers_or_leaves_equals_the_pytree_step_bit_for_bit(kind, layout):
  config = test_cfg.get_config()
  config.update_from_flattened_dict({"train.batch_size": 4, **KINDS[kind]})
  config_lib.validate(config, num_devices=1)
  opt = state_lib.Optimizers.from_config(config)
  step_fn, frozen = train_step.build(config, opt)
  batches = _batches(config, 2)
  state = jax.jit(state_lib.init_fn(config, opt))()
  old = jax.jit(step_fn)  # Today's boundary: the TrainState pytree in and out.
  old_state, old_metrics = state, []
  for batch in batches:
    old_state, metrics = old(old_state, batch, frozen)
    old_metrics.append(metrics)

  sharding = NamedSharding(Mesh(np.array(jax.devices()[:1]), ("data",)), P())
  carried = carried_lib.CarriedState(jax.jit(state_lib.init_fn(config, opt))(), sharding, layout)
  if layout == "packed":
    assert set(carried.carried) == {"float32", "int32"} and len(carried.packing) > 20
  else:
    assert isinstance(carried.carried, list) and len(carried.carried) > 20
  new = carried.jit_step(step_fn, in_shardings=None, out_shardings=None)
  new_metrics = [carried.step(new, batch, frozen) for batch in batches]
  _assert_trees_equal(carried.state(), old_state)
  _assert_trees_equal(new_metrics, old_metrics)
  assert int(carried.state().step) == 2 * config.train.steps_per_dispatch


def test_packing_round_trips_and_refuses_a_changed_structure_or_a_key_array():
  tree = {"a": jnp.arange(6.0).reshape(2, 3), "b": [jnp.int32(7), jnp.zeros((0, 4))], "c": jnp.ones(3, jnp.bfloat16)}
  packing = boundary.Packing(tree)
  bufs = jax.jit(packing.pack)(tree)
  assert {k: v.shape for k, v in bufs.items()} == {"float32": (6,), "int32": (1,), "bfloat16": (3,)}
  _assert_trees_equal(jax.jit(packing.unpack)(bufs), tree)
  with pytest.raises(ValueError, match="the tree's structure changed"):
    packing.pack({"a": tree["a"], "b": tree["b"]})
  with pytest.raises(TypeError, match="leaf 0 has dtype key"):
    boundary.Packing([jax.random.key(0)])


def test_upscaling_and_validation_over_weight_leaves_equal_the_state_boundary():
  config = test_cfg.get_config()
  graphdef, params = nnx.split(registry.build_generator(config.model))
  lr = np.random.default_rng(0).integers(0, 256, (20, 17, 3), np.uint8)
  before = np.asarray(jax.jit(functools.partial(registry.predict, graphdef=graphdef))(params, jnp.asarray(lr[None])))[0]
  np.testing.assert_array_equal(upscaler.Upscaler(graphdef, params, config.model)(lr), before)
  validator = eval_lib.Validator(config, Mesh(np.array(jax.devices()[:1]), ("data",)), graphdef)
  np.testing.assert_array_equal(validator.upscale(params, lr), before)
  np.testing.assert_array_equal(validator.upscale(jax.tree.flatten(params), lr), before)


def test_a_packed_run_resumes_bit_identically_and_ends_where_a_run_over_leaves_ends(resumes_identically, tmp_path):
  from sr_jax.training import train
  config = test_cfg.get_config()
  config.train.update(state_layout="packed", ema_decay=0.9)
  packed = resumes_identically(config)
  config.train.state_layout = "leaves"
  _assert_trees_equal(train.train_and_evaluate(config, str(tmp_path / "leaves")), packed)
  assert int(packed.step) == config.train.num_steps


def test_a_state_layout_that_does_not_exist_is_named():
  config = test_cfg.get_config()
  config.train.state_layout = "pytree"
  with pytest.raises(config_lib.ConfigError, match="config.train.state_layout='pytree' is invalid; accepted: 'auto', "
                     "'packed', 'leaves'"):
    config_lib.validate(config)
