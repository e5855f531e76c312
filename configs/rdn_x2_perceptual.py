r"""Loss comparison, perceptual member: L1 + VGG19 features as Real-ESRGAN (conv1_2..conv5_4 weighted
0.1/0.1/1/1/1, before ReLU, L1 criterion), paper RDN x2 on DIV2K.

Needs the standard ImageNet VGG19 weights offline. The path below is where Keras caches them
(`keras.applications.VGG19(weights="imagenet", include_top=False)` on a connected machine); a torchvision
`vgg19-dcbb9e9d.pth` (with torch) or the same state dict as .npz/.safetensors works too:

  python -m sr_jax.cli.train --config=rdn_x2_perceptual --workdir=runs/rdn_x2_perceptual \
      --config.perceptual.weights=/path/to/vgg19-dcbb9e9d.pth

Feature magnitudes depend on the file: Keras/Caffe weights take 0-255 BGR input and give features ~50x larger
than torchvision weights, so with a Keras file scale loss.perceptual down (e.g. 0.02) to keep the balance.
"""

import os

from sr_jax.configs import default


def get_config():
  config = default.get_config()
  config.loss.l1 = 1.0
  config.loss.perceptual = 1.0
  config.perceptual.network = "vgg19"
  config.perceptual.weights = os.path.expanduser("~/.keras/models/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5")
  config.perceptual.layers = "conv1_2:0.1,conv2_2:0.1,conv3_4:1,conv4_4:1,conv5_4:1"
  config.perceptual.before_relu = True
  config.perceptual.criterion = "l1"
  return config
