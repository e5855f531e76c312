"""VGG16 / VGG19 convolutional features in Flax NNX, for perceptual losses.

Layers are named as in the papers and BasicSR (``conv1_1`` ... ``conv5_4``); 2x2 max pooling (floor, as
torchvision) follows the last conv of each block. Only the layers up to the deepest requested one are built, so
a ``conv3_3`` loss never pays for blocks 4-5. ``pooling="l2"`` replaces the max pooling by DISTS's L2 pooling
(Ding et al. 2020: sqrt of a depthwise 3x3 Hann-window average of x², stride 2, padding 1). Inputs are NHWC RGB in [0, 1]; the network normalises them the way
its weights were trained:

* ``"torch"``: RGB, (x - mean) / std with ImageNet mean/std (torchvision, BasicSR, Real-ESRGAN);
* ``"caffe"``: BGR, 0-255, minus the per-channel mean (the original Caffe VGG, Keras ``applications``, HED).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

# Output channels per block; one conv per entry.
ARCHITECTURES = {
    "vgg16": ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
    "vgg19": ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512), (512, 512, 512, 512)),
}
IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)  # keras.applications.vgg16/vgg19 preprocess_input.
POOLINGS = ("max", "l2")


def layer_names(network: str) -> list[str]:
  """Conv layer names in order, e.g. ['conv1_1', 'conv1_2', 'conv2_1', ...]."""
  if network not in ARCHITECTURES:
    raise ValueError(f"unknown VGG network {network!r}; accepted: {', '.join(ARCHITECTURES)}")
  return [f"conv{b + 1}_{i + 1}" for b, block in enumerate(ARCHITECTURES[network]) for i in range(len(block))]


def l2_pool(x: jax.Array) -> jax.Array:
  """DISTS's L2 pooling of NHWC ``x``: sqrt(hann3x3 * x² + 1e-12), depthwise, stride 2, padding 1."""
  a = np.hanning(5)[1:-1]
  window = np.outer(a, a) / np.outer(a, a).sum()
  kernel = jnp.asarray(np.tile(window[:, :, None, None], (1, 1, 1, x.shape[-1])), x.dtype)
  out = jax.lax.conv_general_dilated(x * x, kernel, (2, 2), ((1, 1), (1, 1)),
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=x.shape[-1])
  return jnp.sqrt(out + 1e-12)


def layer_shapes(network: str) -> list[tuple[int, int]]:
  """(in, out) channels of every conv layer, in order."""
  out, cin = [], 3
  for block in ARCHITECTURES[network]:
    for cout in block:
      out.append((cin, cout))
      cin = cout
  return out


class VGGFeatures(nnx.Module):
  """Features of the requested conv layers, before or after their ReLU."""

  def __init__(self, network: str, layers: tuple[str, ...], *, before_relu: bool = True,
               preprocessing: str = "torch", pooling: str = "max",
               caffe_mean_bgr: tuple[float, float, float] = CAFFE_MEAN_BGR,
               dtype=jnp.float32, rngs: nnx.Rngs):
    names = layer_names(network)
    unknown = [n for n in layers if n not in names]
    if unknown:
      raise ValueError(f"{network} has no layer {', '.join(unknown)}; layers: {', '.join(names)}")
    if preprocessing not in ("torch", "caffe"):
      raise ValueError(f"preprocessing must be 'torch' or 'caffe', got {preprocessing!r}")
    if pooling not in POOLINGS:
      raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
    depth = max(names.index(n) for n in layers) + 1
    self.names = names[:depth]
    self.layers = tuple(layers)
    self.before_relu = before_relu
    self.preprocessing = preprocessing
    self.pooling = pooling
    self.caffe_mean_bgr = tuple(float(m) for m in caffe_mean_bgr)
    self.dtype = dtype
    self.convs = nnx.List([
        nnx.Conv(cin, cout, (3, 3), padding="SAME", dtype=dtype, param_dtype=jnp.float32, rngs=rngs)
        for cin, cout in layer_shapes(network)[:depth]])

  def normalise(self, x: jax.Array) -> jax.Array:
    if x.shape[-1] == 1:
      x = jnp.repeat(x, 3, axis=-1)
    if self.preprocessing == "torch":
      return (x - jnp.asarray(IMAGENET_MEAN_RGB)) / jnp.asarray(IMAGENET_STD_RGB)
    return x[..., ::-1] * 255.0 - jnp.asarray(self.caffe_mean_bgr)

  def __call__(self, x: jax.Array) -> dict[str, jax.Array]:
    """NHWC RGB (or gray) in [0, 1] -> {layer name: NHWC features (float32; float64 for a float64 network)}."""
    wide = jnp.promote_types(self.dtype, jnp.float32)
    h = self.normalise(x.astype(wide)).astype(self.dtype)
    feats = {}
    for i, (name, conv) in enumerate(zip(self.names, self.convs)):
      z = conv(h)
      h = nnx.relu(z)
      if name in self.layers:
        feats[name] = (z if self.before_relu else h).astype(wide)
      last_of_block = i + 1 == len(self.names) or self.names[i + 1].endswith("_1")
      if last_of_block and i + 1 < len(self.names):
        h = l2_pool(h) if self.pooling == "l2" else nnx.max_pool(h, (2, 2), strides=(2, 2), padding="VALID")
    return feats
