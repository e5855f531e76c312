r"""Real-ESRNet x4plus: RRDBNet (23 blocks, 64 features, growth 32; 16,697,987 parameters) trained with L1 on
Real-ESRGAN-degraded patches, EMA 0.999; the first stage of realesrgan_x4plus.py.

  python -m sr_jax.cli.train --config=realesrnet_x4plus --workdir=runs/realesrnet_x4plus

Everything else as realesrnet_rdn_x4.py (train_realesrnet_x4plus.yml, DIV2K in place of DF2K+OST).
"""

from sr_jax.configs import realesrnet_rdn_x4


def get_config():
  config = realesrnet_rdn_x4.get_config()
  config.model.update(name="rrdbnet", num_blocks=23, growth=32, features=64)
  return config
