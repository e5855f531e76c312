r"""Loss comparison, L1 member: the paper RDN x2 on DIV2K with L1 (the RDN paper's loss; same as default.py).

  python -m sr_jax.cli.train --config=rdn_x2_l1 --workdir=runs/rdn_x2_l1

Siblings: rdn_x2_mse.py, rdn_x2_charbonnier.py, rdn_x2_perceptual.py, rdn_x2_gan.py (which starts from this run).
"""

from sr_jax.configs import default


def get_config():
  config = default.get_config()
  config.loss.l1 = 1.0
  return config
