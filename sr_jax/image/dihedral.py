"""The 8 flips/rotations of an image (training augmentation and x8 self-ensemble)."""

import numpy as np


def apply(x: np.ndarray, k: int) -> np.ndarray:
  """The k-th (0..7) transform of an HxW[xC] array (k=0: identity); a view, not a copy."""
  if k >= 4:
    x = x[:, ::-1]
  return np.rot90(x, k % 4, axes=(0, 1))


def invert(x: np.ndarray, k: int) -> np.ndarray:
  """Undoes ``apply(., k)``."""
  x = np.rot90(x, -(k % 4), axes=(0, 1))
  return x[:, ::-1] if k >= 4 else x
