"""Loss terms, the VGG weight loaders, the frozen perceptual network and the GAN step."""

import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from sr_jax import losses
from sr_jax.configs import test as test_cfg
from sr_jax.losses import gan, ldl, pixel
from sr_jax.models import discriminator
from sr_jax.nets import dists, vgg_weights
from sr_jax.training import config_lib, state as state_lib, train, train_step
from sr_jax.workdir import run_dir
from vgg_files import random_vgg, write_torch_layout


RNG = np.random.default_rng(0)


def test_missing_weights_file_stops_training_before_compiling(tmp_path):
  config = test_cfg.get_config()
  config.loss.perceptual = 1.0
  config.perceptual.weights = str(tmp_path / "nowhere.h5")
  with pytest.raises(vgg_weights.WeightsError, match="config.perceptual.weights=.*no such file"):
    train.train_and_evaluate(config, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run" / "checkpoints" / "1")


def _perceptual_loss(tmp_path, network="vgg16"):
  path = str(tmp_path / "vgg.npz")
  write_torch_layout(path, random_vgg(network), network)
  config = test_cfg.get_config()
  config.loss.update(l1=0.0, perceptual=1.0)
  config.perceptual.update(network=network, weights=path, layers="conv1_2:0.1,conv2_2:1")
  return config, *losses.build(config)


def test_every_loss_is_minimal_on_identical_images_with_finite_nonzero_gradients(tmp_path):
  a = jnp.asarray(RNG.random((2, 16, 16, 3)), jnp.float32)
  b = jnp.asarray(RNG.random((2, 16, 16, 3)), jnp.float32)
  eps = 1e-3
  _, perceptual, frozen = _perceptual_loss(tmp_path)
  fns = {name: (lambda p, t, n=name: losses.GeneratorLoss(((n, 1.0),), eps).terms(p, t, {})[n])
         for name in losses.PIXEL_LOSSES if name != "ms_ssim"}  # MS-SSIM needs 161² (tests/test_loss_terms.py).
  fns["perceptual"] = lambda p, t: perceptual.terms(p, t, frozen)["perceptual"]
  for name, fn in fns.items():
    same = float(fn(a, a))
    assert same == pytest.approx(eps if name == "charbonnier" else 0.0, abs=1e-7), name
    assert float(fn(b, a)) > same, name
    g = jax.grad(fn)(b, a)
    assert bool(jnp.all(jnp.isfinite(g))) and float(jnp.abs(g).max()) > 0, name
  # Adversarial: with equal logits both sides sit at log 2; gradients are finite and non-zero.
  real, fake = jnp.zeros((2, 3, 3, 1)), jnp.zeros((2, 3, 3, 1))
  assert float(losses.ragan_generator_loss(real, fake)) == pytest.approx(np.log(2), rel=1e-6)
  assert float(losses.ragan_discriminator_loss(real, fake)) == pytest.approx(np.log(2), rel=1e-6)
  for fn in (losses.ragan_generator_loss, losses.ragan_discriminator_loss):
    g = jax.grad(fn, argnums=1)(real + jnp.asarray(RNG.normal(size=real.shape), jnp.float32), fake)
    assert bool(jnp.all(jnp.isfinite(g))) and float(jnp.abs(g).max()) > 0
  # The discriminator loss is lower when it ranks real above fake, the generator's the other way round.
  hi, lo = jnp.full((2, 3, 3, 1), 3.0), jnp.full((2, 3, 3, 1), -3.0)
  assert float(losses.ragan_discriminator_loss(hi, lo)) < float(losses.ragan_discriminator_loss(lo, hi))
  assert float(losses.ragan_generator_loss(hi, lo)) > float(losses.ragan_generator_loss(lo, hi))


def _run_steps(config, n=2):
  opt = state_lib.Optimizers.from_config(config)
  step, frozen = train_step.build(config, opt)
  state0 = jax.jit(state_lib.init_fn(config, opt))()
  snapshot = jax.tree.map(np.asarray, (state0, frozen))
  rng = np.random.default_rng(1)
  p, s = config.data.patch_size, config.model.scale
  batch = {"lr": rng.integers(0, 256, (4, p, p, 3), dtype=np.uint8),
           "hr": rng.integers(0, 256, (4, p * s, p * s, 3), dtype=np.uint8)}
  step_fn = jax.jit(step)
  state, metrics = state0, None
  for _ in range(n):
    state, metrics = step_fn(state, batch, frozen)
  return snapshot, state, frozen, metrics


def test_vgg_is_frozen_and_not_in_the_optimizer_state(tmp_path):
  config, _, _ = _perceptual_loss(tmp_path)
  (state0, frozen0), state, frozen, metrics = _run_steps(config)
  assert np.isfinite(float(metrics["loss_perceptual"])) and float(metrics["loss_perceptual"]) > 0
  jax.tree.map(np.testing.assert_array_equal, frozen0, jax.tree.map(np.asarray, frozen))
  changed = jax.tree.leaves(jax.tree.map(lambda a, b: not np.array_equal(a, np.asarray(b)),
                                         state0.params, state.params))
  assert all(changed)
  # Adam holds two moments per generator parameter and nothing else of size (no VGG tensors).
  n_params = sum(x.size for x in jax.tree.leaves(state.params))
  n_opt = sum(x.size for x in jax.tree.leaves(state.opt_state))
  assert n_opt <= 2 * n_params + 8
  vgg_shapes = {x.shape for x in jax.tree.leaves(frozen)}
  assert not vgg_shapes & {x.shape for x in jax.tree.leaves(state.opt_state) if x.ndim == 4}


@pytest.mark.parametrize("disc,gan_loss", [("patch", "ragan"), ("unet_sn", "vanilla")])
def test_gan_step_updates_generator_and_discriminator(tmp_path, disc, gan_loss):
  config = test_cfg.get_config()
  config.loss.update(l1=1e-2, adversarial=5e-3)
  config.gan.update(features=8, num_stages=2, discriminator=disc, loss=gan_loss)
  config_lib.validate(config)
  (state0, _), state, _, metrics = _run_steps(config)
  if disc == "unet_sn":  # Spectral norm's u, v moved, outside the optimizer.
    moved = jax.tree.leaves(jax.tree.map(lambda a, b: float(np.abs(a - np.asarray(b)).max()), state0.disc_stats,
                                         state.disc_stats))
    assert len(moved) == 16 and all(d > 0 for d in moved)
    assert sum(x.size for x in jax.tree.leaves(state.disc.opt_state)) <= 2 * sum(
        x.size for x in jax.tree.leaves(state.disc.params)) + 8
  else:
    assert state.disc_stats is None
  for key in ("loss_adversarial", "disc_loss", "disc_grad_norm", "loss"):
    assert np.isfinite(float(metrics[key])) and float(metrics[key]) > 0, key
  for before, after in ((state0.params, state.params), (state0.disc.params, state.disc.params)):
    diffs = jax.tree.leaves(jax.tree.map(lambda a, b: float(np.abs(a - np.asarray(b)).max()), before, after))
    assert all(d > 0 for d in diffs)
  assert int(state.step) == 2 and int(state.first_bad_step) == -1


def test_gan_patch_size_and_resume_conflicts_are_checked(tmp_path):
  config = test_cfg.get_config()
  config.loss.adversarial = 5e-3
  config.gan.num_stages = 6  # 2**6 = 64 does not divide the test config's HR patch.
  with pytest.raises(config_lib.ConfigError, match="config.data.patch_size.*multiple of 64.*fewer gan.num_stages"):
    config_lib.validate(config)
  config.gan.discriminator = "unet_sn"  # Three stride-2 stages: the HR side must be a multiple of 8.
  config.data.patch_size = 10
  with pytest.raises(config_lib.ConfigError, match="multiple of 8, as the 'unet_sn' discriminator needs"):
    config_lib.validate(config)
  config.gan.discriminator = "unet"
  with pytest.raises(config_lib.ConfigError, match="gan.discriminator='unet'.*'patch', 'unet_sn'"):
    config_lib.validate(config)
  config.gan.update(discriminator="patch", loss="wgan")
  config.data.patch_size = 8
  with pytest.raises(config_lib.ConfigError, match="gan.loss='wgan'.*'ragan', 'vanilla', 'lsgan', 'hinge'"):
    config_lib.validate(config)
  config.gan.loss = "ragan"
  pixel = test_cfg.get_config()
  saved = run_dir.overlay(config_lib.defaults(), json.loads(pixel.to_json()))
  config.gan.num_stages = 2
  assert any("loss.adversarial" in c for c in config_lib.resume_conflicts(saved, config))


def test_discriminator_gives_one_logit_per_patch():
  d = discriminator.PatchDiscriminator(features=8, num_stages=3, rngs=nnx.Rngs(0))
  assert d(jnp.zeros((2, 48, 48, 3))).shape == (2, 6, 6, 1)


def test_parse_layers():
  assert losses.parse_layers("conv5_4") == {"conv5_4": 1.0}
  assert losses.parse_layers("conv1_2:0.1, conv5_4:1") == {"conv1_2": 0.1, "conv5_4": 1.0}
  with pytest.raises(ValueError, match="negative"):
    losses.parse_layers("conv1_2:-1")
  with pytest.raises(ValueError, match="empty"):
    losses.parse_layers(" , ")


def test_perceptual_gan_run_resumes_exactly_and_its_checkpoint_upscales(tmp_path, crash_after):
  """Through train_and_evaluate: a killed GAN + perceptual run (Real-ESRGAN's U-Net discriminator) resumes to the
  same parameters as an uninterrupted one, the discriminator and its spectral-norm vectors included, and
  inference loads the GAN checkpoint."""
  path = str(tmp_path / "vgg16.npz")
  write_torch_layout(path, random_vgg("vgg16"), "vgg16")
  config = test_cfg.get_config()
  config.loss.update(l1=1e-2, perceptual=0.01, adversarial=5e-3)
  config.perceptual.update(network="vgg16", weights=path, layers="conv1_2:1,conv2_1:1")
  config.gan.update(features=8, discriminator="unet_sn", loss="vanilla")
  config.train.update(num_steps=4, num_devices=1)
  config.update(eval_every=2, checkpoint_every=2)
  resumed = str(tmp_path / "resumed")
  crash_after(3)  # Dies after step 3; checkpoint 2 on disk.
  with pytest.raises(RuntimeError, match="simulated crash"):
    train.train_and_evaluate(config, resumed)
  crash_after(None)
  state = train.train_and_evaluate(config, resumed)
  straight = train.train_and_evaluate(config, str(tmp_path / "straight"))
  for a, b in ((state.params, straight.params), (state.disc.params, straight.disc.params),
               (state.disc_stats, straight.disc_stats)):
    jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), a, b)
  _, _, params, step = run_dir.load_run(resumed, "latest")
  assert step == 4
  jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), params, state.params)


def test_checkpoints_written_before_the_ema_and_spectral_state_fields_still_restore(tmp_path):
  """A GAN run's checkpoint as earlier versions wrote it (no ema_params / disc_stats) loads and resumes."""
  from sr_jax.training import state as state_lib
  from sr_jax.workdir import checkpointing
  config = test_cfg.get_config()
  config.loss.update(l1=1e-2, adversarial=5e-3)
  config.gan.update(features=8, num_stages=2)
  opt = state_lib.Optimizers.from_config(config)
  state = jax.jit(state_lib.init_fn(config, opt))()
  old = {"step": state.step, "params": state.params, "opt_state": state.opt_state,
         "first_bad_step": state.first_bad_step,
         "disc": {"params": state.disc.params, "opt_state": state.disc.opt_state}}
  run_dir.write_json(str(tmp_path / "config.json"), json.loads(config.to_json()))
  with checkpointing.Checkpointer(str(tmp_path), async_save=False) as ckpt:
    ckpt.save(0, old, {"step": 0})
  run = run_dir.load_run(str(tmp_path), "latest")
  jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), run.params, state.params)


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
