"""Model-size ablation: D (blocks), C (layers per block) and G (growth) of RDN, x2 on T91+BSD200."""

from experiments.sweep_lib import product

BASE_CONFIG = "rdn_291_x2"


def sweep(add):
  for overrides in product({"model.num_blocks": [2, 4], "model.num_layers": [4, 8], "model.growth": [16, 32]}):
    add(**overrides)
