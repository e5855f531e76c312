"""Inference: the (tiled, self-ensembled) upscaler, upscaling files, export, weight interpolation.

Before the package was arranged by concern, ``sr_jax.inference`` was the upscaler's module; its names still
resolve here (``from sr_jax import inference; inference.Upscaler``), imported from ``upscaler`` when first asked
for, so that importing another module of this package does not load the upscaler.
"""

import importlib

_UPSCALER_NAMES = ("Upscaler", "parse_tile", "upscale_image", "finish", "CPU_TILE", "AUTO_TILES")


def __getattr__(name: str):
  if name in _UPSCALER_NAMES:
    return getattr(importlib.import_module("sr_jax.inference.upscaler"), name)
  raise AttributeError(f"module 'sr_jax.inference' has no attribute {name!r}")
