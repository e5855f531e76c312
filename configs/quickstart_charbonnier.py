r"""Quickstart trained with the Charbonnier loss (eps 1e-3) instead of L1.

  python -m sr_jax.cli.train --config=quickstart_charbonnier --workdir=runs/quickstart_charbonnier
"""

from sr_jax.configs import quickstart


def get_config():
  config = quickstart.get_config()
  config.loss.l1 = 0.0
  config.loss.charbonnier = 1.0
  return config
