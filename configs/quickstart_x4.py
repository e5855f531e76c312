r"""The quickstart RDN at x4 on the bundled photos with MATLAB-bicubic LR (EMA 0.999): the bicubic-trained twin of
quickstart_realesrgan.py for the real-world comparison (experiments/realworld.py).

  sr-train --config=quickstart_x4 --workdir=runs/quickstart_x4
"""

from sr_jax.configs import quickstart


def get_config():
  config = quickstart.get_config()
  config.model.scale = 4
  config.data.patch_size = 16  # 64x64 HR patches.
  config.train.ema_decay = 0.999
  config.val_metrics = "psnr,ssim,niqe"
  return config
