r"""Quickstart trained with MSE instead of L1 (compare with configs/quickstart.py; same data and budget).

  python -m sr_jax.cli.train --config=quickstart_mse --workdir=runs/quickstart_mse
"""

from sr_jax.configs import quickstart


def get_config():
  config = quickstart.get_config()
  config.loss.l1 = 0.0
  config.loss.mse = 1.0
  return config
