"""How ``tile="auto"`` runs an image on a CPU: whole when it fits a memory budget, tiles only beyond it.

The memory of a forward pass is measured, not guessed: XLA's own figure (``memory_analysis`` of the compiled
call: its temporaries and output) for a probe of ``PROBE`` LR pixels square, per LR pixel; activations grow with
the pixel count (checked for RRDBNet x4: 8.4 / 33.6 / 134 MB at 32² / 64² / 128²), so an image of N pixels needs
about N times that. Within ``budget`` bytes the image runs whole: exactly the whole-image result, no pixel
computed twice. Beyond it the image is cut into tiles whose windows (tile + 2 x overlap) hold at most the
budget's pixels, one window per call. The overlap is the model's exact one (tiles equal the whole image) unless
that would make the windows compute more than ``MAX_WORK`` times the image's pixels (a receptive field of 350
LR pixels, x4plus's, in windows of a few hundred): then it is the largest overlap that keeps within
``MAX_WORK``, and ``Plan.exact`` is False (the caller says so: tiles then differ from a whole-image run where the
far context would have reached them).
"""

from __future__ import annotations

import dataclasses
import math

DEFAULT_BUDGET_GB = 2.0  # sr-upscale --tile_budget_gb: a forward pass's temporaries + output, not the weights.
MAX_WORK = 2.0  # Window pixels computed / image pixels, at most.
PROBE = 64  # LR side of the probe compile that measures the bytes per pixel.


@dataclasses.dataclass(frozen=True)
class Plan:
  tile: int  # LR core side; 0: the image whole.
  overlap: int
  exact: bool  # The overlap is the model's exact one (or the image runs whole).
  work: float  # Window pixels computed / image pixels.


def work(h: int, w: int, tile: int, overlap: int) -> float:
  """Pixels the windows of ``Upscaler._tiled`` compute (cores at multiples of ``tile``, windows of tile + 2
  overlap clamped inside the image) over the image's pixels."""
  if tile <= 0:
    return 1.0
  win_h, win_w = min(h, tile + 2 * overlap), min(w, tile + 2 * overlap)
  return math.ceil(h / tile) * win_h * math.ceil(w / tile) * win_w / (h * w)


def _best_tile(h: int, w: int, max_tile: int, overlap: int, grid: int) -> tuple[int, float]:
  """(tile, work) of least work among max_tile and the tiles near it that split a side evenly."""
  candidates = {max_tile} | {-(-side // n) for side in (h, w) for n0 in [-(-side // max_tile)]
                             for n in range(n0, n0 + 3)}
  candidates = {t // grid * grid for t in candidates if t // grid * grid > 0}
  return min(((t, work(h, w, t, overlap)) for t in candidates), key=lambda tw: (tw[1], -tw[0]))


def plan(h: int, w: int, *, bytes_per_pixel: float, budget: float, overlap: int, grid: int = 1,
         max_work: float = MAX_WORK) -> Plan:
  """The way to run an ``h`` x ``w`` LR image within ``budget`` bytes (see the module docstring)."""
  if h * w * bytes_per_pixel <= budget:
    return Plan(0, overlap, True, 1.0)
  window = max(grid, int(math.sqrt(budget / bytes_per_pixel)) // grid * grid)
  for m in range(overlap, -1, -1):  # The exact overlap if it keeps within max_work, else the largest that does.
    m = m // grid * grid if m < overlap else m
    if window - 2 * m < grid:
      continue
    tile, cost = _best_tile(h, w, window - 2 * m, m, grid)
    if cost <= max_work or m == 0:
      return Plan(tile, m, m == overlap, cost)
  return Plan(grid, 0, overlap == 0, work(h, w, grid, 0))  # A window smaller than one grid cell: the least.
