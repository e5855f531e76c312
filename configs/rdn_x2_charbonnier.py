r"""Loss comparison, Charbonnier member: mean sqrt(diff^2 + eps^2) with eps = 1e-3 (LapSRN), paper RDN x2.

  python -m sr_jax.cli.train --config=rdn_x2_charbonnier --workdir=runs/rdn_x2_charbonnier
"""

from sr_jax.configs import default


def get_config():
  config = default.get_config()
  config.loss.l1 = 0.0
  config.loss.charbonnier = 1.0
  config.loss.charbonnier_eps = 1e-3
  return config
