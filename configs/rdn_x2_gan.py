r"""Loss comparison, adversarial member (ESRGAN recipe): starts from the L1 run, then trains with
1e-2 L1 + 1.0 perceptual (VGG19 conv5_4 before ReLU) + 5e-3 relativistic GAN, against a VGG-style patch
discriminator with its own Adam (1e-4, betas 0.9/0.99), both updated in the same jitted step.

  python -m sr_jax.cli.train --config=rdn_x2_l1 --workdir=runs/rdn_x2_l1        # first
  python -m sr_jax.cli.train --config=rdn_x2_gan --workdir=runs/rdn_x2_gan \
      --config.perceptual.weights=/path/to/vgg19-dcbb9e9d.pth

ESRGAN trains 400k steps, halving the learning rate at 50k, 100k, 200k and 300k; the step schedule below
halves every 100k instead. HR patches are 96x96 (48 LR): 4 stride-2 stages give a 6x6 map of patch logits.
"""

from sr_jax.configs import rdn_x2_perceptual


def get_config():
  config = rdn_x2_perceptual.get_config()
  config.loss.l1 = 1e-2
  config.loss.perceptual = 1.0
  config.loss.adversarial = 5e-3
  config.perceptual.layers = "conv5_4"
  config.train.init_from = "runs/rdn_x2_l1"
  config.train.num_steps = 400_000
  config.train.learning_rate = 1e-4
  config.train.lr_decay_steps = 100_000
  config.gan.learning_rate = 1e-4
  config.gan.num_stages = 4
  return config
