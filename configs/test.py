r"""Tiny RDN for tests: seconds per run on a CPU.

  python -m sr_jax.cli.train --config=test --workdir=/tmp/sr_test
"""

from sr_jax.configs import default


def get_config():
  config = default.get_config()
  config.model.num_blocks = 2
  config.model.num_layers = 2
  config.model.growth = 8
  config.model.features = 8
  config.data.train = "skimage:astronaut,coffee"
  config.data.val = "skimage:chelsea"
  config.data.patch_size = 8
  config.data.max_val_images = 1
  config.train.batch_size = 8
  config.train.num_steps = 6
  config.train.learning_rate = 1e-3
  config.train.lr_schedule = "constant"
  config.log_every = 2
  config.eval_every = 3
  config.checkpoint_every = 3
  config.num_image_triplets = 1
  return config
