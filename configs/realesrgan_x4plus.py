r"""Real-ESRGAN x4plus: RRDBNet from the realesrnet_x4plus run (EMA weights), then L1 + VGG19 perceptual + 0.1
vanilla GAN against the U-Net discriminator with spectral normalisation; EMA, Real-ESRGAN degradations.

  python -m sr_jax.cli.train --config=realesrnet_x4plus --workdir=runs/realesrnet_x4plus   # first
  python -m sr_jax.cli.train --config=realesrgan_x4plus --workdir=runs/realesrgan_x4plus

Or start from the published generator: ``python -m sr_jax.cli.import_weights --weights=RealESRNet_x4plus.pth
--workdir=runs/realesrnet_x4plus``. Settings as realesrgan_rdn_x4.py (train_realesrgan_x4plus.yml).
"""

from sr_jax.configs import realesrgan_rdn_x4


def get_config():
  config = realesrgan_rdn_x4.get_config()
  config.model.update(name="rrdbnet", num_blocks=23, growth=32, features=64)
  config.train.init_from = "runs/realesrnet_x4plus"
  return config
