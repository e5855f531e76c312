"""Patch-size ablation: LR training patch side (HR = x2), with the batch scaled to keep pixels per step equal."""

from experiments.sweep_lib import zip_

BASE_CONFIG = "rdn_291_x2"


def sweep(add):
  for overrides in zip_({"data.patch_size": [16, 24, 32, 48], "train.batch_size": [36, 16, 9, 4]}):
    add(**overrides)
