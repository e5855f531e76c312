r"""Real-ESRGAN's GAN stage with the paper RDN at x4: starts from the realesrnet_rdn_x4 run (its EMA weights).

  python -m sr_jax.cli.train --config=realesrgan_rdn_x4 --workdir=runs/realesrgan_rdn_x4

The VGG19 is torchvision's ImageNet file where torchvision caches it (``torchvision.models.vgg19(weights=
"IMAGENET1K_V1")`` on a connected machine, with torch installed to read .pth; or the same tensors as
.npz/.safetensors via --config.perceptual.weights), the weights Real-ESRGAN uses.

As train_realesrgan_x4plus.yml: 1 L1 + 1 perceptual (VGG19 conv1_2:0.1, conv2_2:0.1, conv3_4:1, conv4_4:1,
conv5_4:1 before ReLU, L1) + 0.1 vanilla GAN against the U-Net discriminator with spectral normalisation
(64 channels), Adam 1e-4 for both, 400k steps, EMA 0.999, best checkpoint by LPIPS. Real-ESRGAN feeds the
discriminator un-sharpened HR while L1/perceptual use the sharpened one; here all three use the sharpened target.
"""

import os

from sr_jax.configs import realesrnet_rdn_x4


def get_config():
  config = realesrnet_rdn_x4.get_config()
  config.train.init_from = "runs/realesrnet_rdn_x4"
  config.loss.l1 = 1.0
  config.loss.perceptual = 1.0
  config.loss.adversarial = 0.1
  config.perceptual.network = "vgg19"
  config.perceptual.weights = os.path.expanduser("~/.cache/torch/hub/checkpoints/vgg19-dcbb9e9d.pth")
  config.perceptual.layers = "conv1_2:0.1,conv2_2:0.1,conv3_4:1,conv4_4:1,conv5_4:1"
  config.train.learning_rate = 1e-4
  config.train.num_steps = 400_000
  config.train.lr_decay_steps = 400_000
  config.gan.discriminator = "unet_sn"
  config.gan.loss = "vanilla"
  config.gan.features = 64
  config.gan.learning_rate = 1e-4
  config.best_metric = "lpips"
  return config
