"""Blur kernels of Real-ESRGAN's degradation model: the formulas of BasicSR's ``basicsr/data/degradations.py``.

Kernels are ``k x k`` float64 arrays (k odd) on the grid ``-(k//2) .. k//2`` summing to 1:
- ``gaussian``: exp(-q/2), q = x^T S^-1 x, S = R diag(sx^2, sy^2) R^T (isotropic: sy = sx, theta = 0);
- ``generalized_gaussian``: exp(-q^beta / 2) (beta = 1: Gaussian);
- ``plateau``: 1 / (q^beta + 1);
- ``sinc``: the circular low-pass filter, cutoff * J1(cutoff r) / (2 pi r), cutoff^2 / (4 pi) at the centre.

``sample_kernel(rng, spec)`` draws one the way Real-ESRGAN's dataset does (a kernel size from ``sizes``; a sinc
with ``sinc_prob``, else a type by ``probs`` with sigma, angle and beta uniform in their ranges; beta below 1 or
above 1 with equal chance), then zero-pads it to ``pad_to``. ``tests/golden/realesrgan_kernels.py`` wrote the
reference values from BasicSR's own functions.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
from scipy import special

TYPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")


@functools.lru_cache(maxsize=16)
def grid(size: int) -> np.ndarray:
  """(size, size, 2) coordinates (x, y), centred on the middle pixel (read-only: cached)."""
  if size % 2 != 1:
    raise ValueError(f"blur kernel size must be odd, got {size}")
  ax = np.arange(-(size // 2), size // 2 + 1, dtype=np.float64)
  xx, yy = np.meshgrid(ax, ax)
  g = np.stack([xx, yy], axis=-1)
  g.flags.writeable = False
  return g


def sigma_matrix(sig_x: float, sig_y: float, theta: float) -> np.ndarray:
  rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
  return rot @ np.diag([sig_x ** 2, sig_y ** 2]) @ rot.T


def _quadratic(size: int, sig_x: float, sig_y: float, theta: float, isotropic: bool) -> np.ndarray:
  s = np.diag([sig_x ** 2, sig_x ** 2]) if isotropic else sigma_matrix(sig_x, sig_y, theta)
  g = grid(size)
  return np.sum((g @ np.linalg.inv(s)) * g, axis=-1)


def _normalised(k: np.ndarray) -> np.ndarray:
  return k / np.sum(k)


def gaussian(size: int, sig_x: float, sig_y: float = 0.0, theta: float = 0.0, isotropic: bool = True
             ) -> np.ndarray:
  return _normalised(np.exp(-0.5 * _quadratic(size, sig_x, sig_y, theta, isotropic)))


def generalized_gaussian(size: int, sig_x: float, sig_y: float, theta: float, beta: float,
                         isotropic: bool = True) -> np.ndarray:
  return _normalised(np.exp(-0.5 * np.power(_quadratic(size, sig_x, sig_y, theta, isotropic), beta)))


def plateau(size: int, sig_x: float, sig_y: float, theta: float, beta: float, isotropic: bool = True
            ) -> np.ndarray:
  return _normalised(1.0 / (np.power(_quadratic(size, sig_x, sig_y, theta, isotropic), beta) + 1.0))


def sinc(cutoff: float, size: int, pad_to: int = 0) -> np.ndarray:
  """2-D circularly symmetric low-pass filter of ``cutoff`` radians (pi: none), zero-padded to ``pad_to``."""
  r = np.sqrt(np.sum(grid(size) ** 2, axis=-1))
  with np.errstate(divide="ignore", invalid="ignore"):
    k = cutoff * special.j1(cutoff * r) / (2 * np.pi * r)
  k[size // 2, size // 2] = cutoff ** 2 / (4 * np.pi)
  return pad(_normalised(k), pad_to)


def pad(kernel: np.ndarray, size: int) -> np.ndarray:
  """Zero-pads a centred kernel to ``size`` (no-op when it is not larger)."""
  p = (size - kernel.shape[0]) // 2
  return np.pad(kernel, p) if p > 0 else kernel


@dataclasses.dataclass(frozen=True)
class KernelSpec:
  """How one blur stage draws its kernel (Real-ESRGAN's first-stage defaults)."""
  probs: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)  # Of TYPES, in that order.
  sinc_prob: float = 0.1
  sigma: tuple[float, float] = (0.2, 3.0)
  betag: tuple[float, float] = (0.5, 4.0)
  betap: tuple[float, float] = (1.0, 2.0)
  sizes: tuple[int, ...] = (7, 9, 11, 13, 15, 17, 19, 21)
  pad_to: int = 21


def _beta(rng: np.random.Generator, lo: float, hi: float) -> float:
  """Below or above 1 with equal chance (BasicSR assumes lo < 1 < hi; a range on one side stays on it)."""
  if rng.uniform() < 0.5:
    return rng.uniform(lo, min(1.0, hi)) if lo < 1 else lo
  return rng.uniform(max(1.0, lo), hi) if hi > 1 else hi


def sample_kernel(rng: np.random.Generator, spec: KernelSpec) -> np.ndarray:
  """One ``spec.pad_to``-sized kernel drawn as Real-ESRGAN's dataset draws its blur kernels."""
  size = int(rng.choice(spec.sizes))
  if rng.uniform() < spec.sinc_prob:
    # Real-ESRGAN: cutoffs above pi/3 for kernels under 13 pixels (smaller ones would ring), pi/5 otherwise.
    cutoff = rng.uniform(np.pi / 3 if size < 13 else np.pi / 5, np.pi)
    return pad(sinc(cutoff, size), spec.pad_to)
  kind = TYPES[int(rng.choice(len(TYPES), p=np.asarray(spec.probs) / np.sum(spec.probs)))]
  iso = kind.endswith("_iso") or kind == "iso"
  sig_x = rng.uniform(*spec.sigma)
  sig_y, theta = (sig_x, 0.0) if iso else (rng.uniform(*spec.sigma), rng.uniform(-np.pi, np.pi))
  if kind in ("iso", "aniso"):
    k = gaussian(size, sig_x, sig_y, theta, isotropic=iso)
  elif kind.startswith("generalized"):
    k = generalized_gaussian(size, sig_x, sig_y, theta, _beta(rng, *spec.betag), isotropic=iso)
  else:
    k = plateau(size, sig_x, sig_y, theta, _beta(rng, *spec.betap), isotropic=iso)
  return pad(k, spec.pad_to)


def final_sinc(rng: np.random.Generator, prob: float = 0.8, sizes: tuple[int, ...] = KernelSpec.sizes,
               pad_to: int = 21) -> np.ndarray:
  """Real-ESRGAN's last filter: a sinc (cutoff in [pi/3, pi]) with ``prob``, else the identity pulse."""
  if rng.uniform() < prob:
    size = int(rng.choice(sizes))
    return sinc(rng.uniform(np.pi / 3, np.pi), size, pad_to)
  pulse = np.zeros((pad_to, pad_to))
  pulse[pad_to // 2, pad_to // 2] = 1.0
  return pulse
