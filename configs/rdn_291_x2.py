r"""A small RDN on the classic "291" set (T91 + BSD200), validated on Set5 x2: a short CPU run.

Needs the benchmark folders under $SR_DATA_DIR (or --config.data.data_dir).

  SR_DATA_DIR=../shared/data python -m sr_jax.cli.train --config=rdn_291_x2 --workdir=runs/rdn_291_x2

Expected on a 2-core CPU (about 12 minutes): Set5 x2 PSNR above bicubic (33.68 dB); docs/benchmarks.md has the
figure.
For the paper's model use --config.model.num_blocks=16 --config.model.num_layers=8 --config.model.growth=64
--config.model.features=64 (a GPU job).
"""

from sr_jax.configs import quickstart


def get_config():
  config = quickstart.get_config()
  config.data.train = "bench:T91+bench:BSD200"
  config.data.val = "bench:Set5"
  config.train.num_steps = 4000
  config.eval_every = 1000
  config.checkpoint_every = 1000
  return config
