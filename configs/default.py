r"""The RDN paper's x2 setup on DIV2K (Zhang et al., CVPR 2018).

D=16 blocks of C=8 layers, G=G0=64 (22,123,395 parameters), 48x48 LR patches, batch 16, L1 loss,
Adam(0.9, 0.999) at 1e-4 halved every 200k steps, 1M steps. DIV2K comes from tensorflow-datasets (downloaded on
first use, or read offline from the official zips: see docs/data.md "DIV2K").

  python -m sr_jax.cli.train --config=default --workdir=runs/rdn_x2_div2k

Expected (paper, 1M steps): Set5 x2 38.24 dB, Set14 34.01 dB, B100 32.34 dB.
Other scales: --config.model.scale=3 --config.data.patch_size=32 (and the matching tfds config).

Every field, its default and a comment saying what it does live with the part that reads it (config_lib.defaults
lists the owners: the model registry, datasets, degradations, losses, train_config); the defaults are this
recipe, so this config is the defaults themselves.
"""

import ml_collections

from sr_jax.training import config_lib


def get_config() -> ml_collections.ConfigDict:
  return config_lib.defaults()
