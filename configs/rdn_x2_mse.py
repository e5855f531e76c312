r"""Loss comparison, MSE member: the paper RDN x2 on DIV2K trained with mean squared error.

  python -m sr_jax.cli.train --config=rdn_x2_mse --workdir=runs/rdn_x2_mse
"""

from sr_jax.configs import default


def get_config():
  config = default.get_config()
  config.loss.l1 = 0.0
  config.loss.mse = 1.0
  return config
