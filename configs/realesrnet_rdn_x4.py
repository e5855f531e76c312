r"""Real-ESRNet recipe with the paper RDN at x4: L1 on Real-ESRGAN-degraded DIV2K patches, EMA weights.

  python -m sr_jax.cli.train --config=realesrnet_rdn_x4 --workdir=runs/realesrnet_rdn_x4
  python -m sr_jax.cli.train --config=realesrgan_rdn_x4 --workdir=runs/realesrgan_rdn_x4   # the GAN stage, after

As train_realesrnet_x4plus.yml (Wang et al., ICCVW 2021), with the RDN in place of RRDBNet and DIV2K in place of
DF2K+OST: 256x256 HR patches (64 LR), batch 48 (12 per GPU on 4 GPUs), Adam 2e-4 (0.9, 0.99), 1M steps, EMA
0.999, USM-sharpened targets, the second-order degradation model (config.realesrgan). Validation: Set5 degraded
once per image by the same model (fixed, so curves compare), PSNR/SSIM/LPIPS/NIQE.
"""

from sr_jax.configs import default


def get_config():
  config = default.get_config()
  config.model.scale = 4
  config.data.train = "tfds:div2k/bicubic_x4"  # Only the HR images are read; the LR comes from the degradations.
  config.data.patch_size = 64
  config.data.degradation = "realesrgan"
  config.loss.l1 = 1.0
  config.train.batch_size = 48
  config.train.learning_rate = 2e-4
  config.train.adam_b2 = 0.99
  config.train.num_steps = 1_000_000
  config.train.lr_decay_steps = 1_000_000
  config.train.ema_decay = 0.999
  config.val_metrics = "psnr,ssim,lpips,niqe"
  return config
