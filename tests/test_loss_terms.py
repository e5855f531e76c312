"""SSIM, LDL, DISTS and the GAN objectives equal their references; AdamW; gradient accumulation equals the whole
batch (goldens: tests/golden/losses_reference.py, BasicSR 1.4.2's code in torch; tests/golden/dists_reference.py)."""

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sr_jax import losses
from sr_jax.configs import test as test_cfg
from sr_jax.losses import gan, ldl, pixel
from sr_jax.nets import dists
from sr_jax.training import config_lib, optim, state as state_lib, train, train_step

GOLDEN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")


def _golden():
  sys.path.insert(0, GOLDEN_DIR)
  import losses_reference  # noqa: E402  (the golden's own patch builder)
  return losses_reference, np.load(os.path.join(GOLDEN_DIR, "losses_reference.npz"))


def _close(got, want, rel):
  np.testing.assert_allclose(np.asarray(got), want, rtol=0, atol=rel * np.abs(want).max())


@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_ssim_and_ldl_losses_equal_basicsr(precision, data_dir):
  """Value and gradient with respect to SR; the reference is float64 (float64 here: the definition, 1e-9;
  float32: 1e-4 of the largest gradient, SSIM's variance differences cancel)."""
  ref, g = _golden()
  hr, sr, ema = ref.patches(data_dir)
  tol = 1e-9 if precision == "float64" else 1e-4
  with jax.enable_x64(precision == "float64"):
    hr, sr, ema = (jnp.asarray(a, precision) for a in (hr, sr, ema))
    value, grad = jax.value_and_grad(pixel.ssim_loss)(sr, hr)
    assert float(value) == pytest.approx(float(g["ssim_loss"]), rel=tol * 10)
    _close(grad, g["ssim_grad"], max(tol, 1e-6))  # The stored gradients are float32.
    got = np.asarray(ldl.artifact_map(hr, sr, ema))
    if precision == "float64":
      _close(got, g["ldl_map"], 1e-6)
      value, grad = jax.value_and_grad(lambda x: ldl.ldl_loss(hr, x, ema))(sr)
      assert float(value) == pytest.approx(float(g["ldl_loss"]), rel=1e-9)
      _close(grad, g["ldl_grad"], 1e-6)
    else:  # Pixels where |HR - SR| and |HR - EMA| tie in float64 may fall either side of r < r_ema in float32.
      r = lambda x: np.abs(np.asarray(hr, np.float64) - np.asarray(x, np.float64)).sum(-1, keepdims=True)
      clear = np.abs(r(sr) - r(ema)) > 1e-5
      assert clear.mean() > 0.9
      np.testing.assert_allclose(got[clear], g["ldl_map"][clear], rtol=0, atol=1e-4 * np.abs(g["ldl_map"]).max())
  m = np.asarray(g["ldl_map"])
  assert (m == 0).mean() > 0.05 and (m > 0).mean() > 0.3  # Both branches of the EMA test are exercised.


@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_ms_ssim_loss_equals_pytorch_msssim(precision, data_dir):
  ref, g = _golden()
  hr, sr = ref.ms_ssim_patches(data_dir)
  with jax.enable_x64(precision == "float64"):
    value, grad = jax.value_and_grad(pixel.ms_ssim_loss)(jnp.asarray(sr, precision), jnp.asarray(hr, precision))
  assert float(value) == pytest.approx(float(g["ms_ssim_loss"]), rel=1e-9 if precision == "float64" else 1e-5)
  _close(np.asarray(grad)[:, ::5, ::5], g["ms_ssim_grad_every5"], 1e-6 if precision == "float64" else 1e-3)
  assert float(pixel.ms_ssim_loss(jnp.asarray(hr, jnp.float32), jnp.asarray(hr, jnp.float32))) == pytest.approx(
      0.0, abs=1e-6)
  with pytest.raises(ValueError, match="at least 161x161"):
    pixel.ms_ssim(jnp.zeros((1, 160, 200, 3)), jnp.zeros((1, 160, 200, 3)))
  config = test_cfg.get_config()
  config.loss.ms_ssim = 1.0
  with pytest.raises(config_lib.ConfigError, match="is at least 161: MS-SSIM halves"):
    config_lib.validate(config)


@pytest.mark.parametrize("gan_type", ["vanilla", "lsgan", "hinge", "ragan"])
def test_gan_objectives_equal_basicsr(gan_type):
  ref, g = _golden()
  real, fake = ref.logits()
  with jax.enable_x64(True):
    g_fn, d_fn = gan.GAN_LOSSES[gan_type]
    real, fake = jnp.asarray(real), jnp.asarray(fake)
    f64 = lambda fn: (lambda r, f: fn(r, f).astype(jnp.float64))
    # Our objectives compute in float32 (the step's precision); compare at float32 accuracy.
    for name, fn in (("g", g_fn), ("d", d_fn)):
      value, (gr, gf) = jax.value_and_grad(f64(fn), argnums=(0, 1))(real.astype(jnp.float32), fake.astype(jnp.float32))
      assert float(value) == pytest.approx(float(g[f"{gan_type}_{name}"]), rel=1e-6), name
      _close(gr, g[f"{gan_type}_{name}_real_grad"], 1e-6)
      _close(gf, g[f"{gan_type}_{name}_fake_grad"], 1e-6)


def test_lsgan_and_hinge_rank_real_above_fake():
  hi, lo = jnp.full((2, 3, 3, 1), 3.0), jnp.full((2, 3, 3, 1), -3.0)
  for name in ("lsgan", "hinge"):
    g_fn, d_fn = gan.GAN_LOSSES[name]
    assert float(d_fn(hi, lo)) < float(d_fn(lo, hi)), name
    assert float(g_fn(lo, hi)) < float(g_fn(hi, lo)), name
  assert float(gan.hinge_discriminator_loss(hi, lo)) == 0.0  # Both margins met.


def test_dists_term_is_the_metric_and_its_network_is_frozen(lpips_weights):
  config = test_cfg.get_config()
  config.loss.update(l1=1.0, dists=0.5)
  config.data.patch_size = 8
  loss, frozen = losses.build(config)
  rng = np.random.default_rng(0)
  a, b = (jnp.asarray(rng.random((2, 32, 32, 3)), jnp.float32) for _ in range(2))
  graphdef, params = dists.load()
  terms = loss.terms(a, b, frozen)
  assert float(terms["dists"]) == pytest.approx(float(jnp.mean(dists.distance(graphdef, params, a, b))), rel=1e-6)
  assert float(loss.total(terms)) == pytest.approx(float(terms["l1"] + 0.5 * terms["dists"]), rel=1e-6)
  grad_frozen = jax.grad(lambda f: loss.terms(a, b, f)["dists"])(frozen)
  assert all(float(jnp.abs(x).max()) == 0 for x in jax.tree.leaves(grad_frozen))


def test_ldl_needs_the_ema_model_and_trains_with_it(tmp_path):
  config = test_cfg.get_config()
  config.loss.update(l1=1.0, ldl=1.0)
  with pytest.raises(config_lib.ConfigError, match=r"loss.ldl=1.0.*train.ema_decay > 0"):
    config_lib.validate(config)
  config.train.ema_decay = 0.9
  config.train.num_steps, config.eval_every, config.checkpoint_every = 4, 4, 4
  state = train.train_and_evaluate(config, str(tmp_path / "ldl"))
  assert int(state.step) == 4 and int(state.first_bad_step) == -1


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
