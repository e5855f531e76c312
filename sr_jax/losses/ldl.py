"""LDL (Liang, Zeng, Zhang, "Details or Artifacts: A Locally Discriminative Learning Approach to Realistic Image
Super-Resolution", CVPR 2022), as BasicSR 1.4.2 computes it (``losses/loss_util.get_refined_artifact_map`` and
``models/realesrgan_model.py``).

With r = sum over channels |HR - SR| and r_ema the same for the EMA model's output: the artifact map
M = var(r over the patch)^(1/5) * local variance of r in a 7x7 window (reflect padding; both variances
unbiased), set to 0 where r < r_ema (pixels the EMA model gets wrong too are details, not artifacts); the loss
is L1(M * SR, M * HR). Gradients flow through M as in BasicSR (only the EMA output is constant), and |x| has
torch's subgradient 0 at x = 0 (SR equal to HR in a channel happens with 8-bit images).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

KSIZE = 7


def _abs(x: jax.Array) -> jax.Array:
  """|x| whose gradient at 0 is 0 (torch's), not jax.numpy.abs's 1."""
  return x * jnp.sign(x)


def _local_variance(r: jax.Array, ksize: int) -> jax.Array:
  """Unbiased variance of each ksize x ksize window of NHW1 ``r`` (reflect-padded: same size out)."""
  pad = (ksize - 1) // 2
  padded = jnp.pad(r, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
  h, w = r.shape[1], r.shape[2]
  windows = jnp.stack([padded[:, i:i + h, j:j + w] for i in range(ksize) for j in range(ksize)], axis=-1)
  return jnp.var(windows, axis=-1, ddof=1)


def artifact_map(hr: jax.Array, sr: jax.Array, sr_ema: jax.Array, ksize: int = KSIZE) -> jax.Array:
  """BasicSR's get_refined_artifact_map for NHWC images: (N, H, W, 1)."""
  r_ema = jnp.sum(_abs(hr - sr_ema), axis=-1, keepdims=True)
  r = jnp.sum(_abs(hr - sr), axis=-1, keepdims=True)
  patch = jnp.var(r, axis=(1, 2, 3), ddof=1, keepdims=True) ** (1 / 5)
  weight = patch * _local_variance(r, ksize)
  return jnp.where(r < r_ema, 0.0, weight)


def ldl_loss(hr: jax.Array, sr: jax.Array, sr_ema: jax.Array) -> jax.Array:
  m = artifact_map(hr, sr, jax.lax.stop_gradient(sr_ema))
  return jnp.mean(_abs(m * sr - m * hr))
