"""The one place that turns a config into a network: generators by ``config.model.name``, the discriminator.

Each architecture registers how to build it, which ``config.model`` fields define its checkpoint (a workdir
trained with other values is a different model), its receptive-field radius (tiled inference's overlap) and
its FLOPs per output pixel (throughput, the benchmark and the report). A new architecture is one module under
``sr_jax/models/`` and one entry in ``ARCHITECTURES``.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from sr_jax.core.errors import require
from sr_jax.models import discriminator, edsr, hat, isr, rcan, rdn, rrdbnet, srvgg, swinir, unet_discriminator

ModelConfig = ml_collections.ConfigDict  # config.model
SCALES = (2, 3, 4)
DTYPES = ("float32", "bfloat16")
CHANNELS = (1, 3)


@dataclasses.dataclass(frozen=True)
class Architecture:
  build: Callable[[ModelConfig, "Keys"], nnx.Module]  # Keys: nnx.Rngs-like, what constructors draw from.
  fields: tuple[str, ...]  # config.model fields that define the parameters (besides name).
  receptive_field: Callable[[ModelConfig], int]  # Radius in LR pixels.
  flops_per_output_pixel: Callable[[ModelConfig], float]  # Forward multiply-adds x2 per HR pixel.
  scales: tuple[int, ...] = (2, 3, 4)  # config.model.scale values it supports.
  # Tiled inference's default overlap where it is not the receptive field (attention models, whose receptive
  # field spans the image; the value keeps tiled vs whole invisible, measured in docs/models.md).
  tile_overlap: Callable[[ModelConfig], int] | None = None
  # The smallest input side an export with symbolic sizes accepts (padding to window multiples needs it).
  min_side: Callable[[ModelConfig], int] = lambda m: 4
  # Attention windows anchored to a grid of this many LR pixels from the top-left (the input is reflect-padded
  # to its multiples inside): tiles on that grid partition their windows as the whole image does.
  window_grid: Callable[[ModelConfig], int] = lambda m: 1
  check: Callable[[ModelConfig], None] = lambda m: None  # Its own rules across its fields (raises ConfigError).
  drop_path: bool = False  # Trains with stochastic depth (model.drop_path_rate).
  resi_connections: tuple[str, ...] = swinir.RESI_CONNECTIONS  # model.resi_connection values it accepts.


_RDN_FIELDS = ("scale", "num_blocks", "num_layers", "growth", "features", "channels")
_RRDB_FIELDS = ("scale", "num_blocks", "growth", "features", "channels")
_SRVGG_FIELDS = ("scale", "num_blocks", "features", "channels", "activation")
_EDSR_FIELDS = ("scale", "num_blocks", "features", "channels", "res_scale")
_RCAN_FIELDS = ("scale", "num_groups", "num_blocks", "features", "channels", "squeeze", "res_scale")
_SWINIR_FIELDS = ("scale", "num_blocks", "num_layers", "features", "num_heads", "window_size", "mlp_ratio",
                  "upsampler", "resi_connection", "channels")
_HAT_FIELDS = ("scale", "num_blocks", "num_layers", "features", "num_heads", "window_size", "mlp_ratio",
               "compress_ratio", "squeeze", "overlap_ratio", "resi_connection", "channels")
_ISR_RRDN_FIELDS = ("scale", "num_blocks", "rdbs_per_block", "num_layers", "growth", "features", "channels")

ARCHITECTURES: dict[str, Architecture] = {
    "rdn": Architecture(
        build=lambda m, rngs: rdn.RDN(**{k: m[k] for k in _RDN_FIELDS}, dtype=jnp.dtype(m.dtype),
                                     conv_impl=m.conv_impl, rngs=rngs),
        fields=_RDN_FIELDS,
        receptive_field=lambda m: rdn.receptive_field_radius(m.num_blocks, m.num_layers, m.scale),
        flops_per_output_pixel=lambda m: rdn.flops_per_output_pixel(**{k: m[k] for k in _RDN_FIELDS})),
    "rrdbnet": Architecture(  # ESRGAN / Real-ESRGAN: num_blocks RRDBs, growth per dense layer, features.
        build=lambda m, rngs: rrdbnet.RRDBNet(**{k: m[k] for k in _RRDB_FIELDS}, dtype=jnp.dtype(m.dtype),
                                             rngs=rngs),
        fields=_RRDB_FIELDS,
        receptive_field=lambda m: rrdbnet.receptive_field_radius(m.num_blocks, m.scale),
        flops_per_output_pixel=lambda m: rrdbnet.flops_per_output_pixel(**{k: m[k] for k in _RRDB_FIELDS}),
        scales=(1, 2, 4)),  # 1 and 2 pixel-unshuffle the input (BasicSR's layout, Real-ESRGAN's x2plus).
    "srvgg": Architecture(  # Real-ESRGAN's SRVGGNetCompact; num_blocks is BasicSR's num_conv (body convs).
        build=lambda m, rngs: srvgg.SRVGGNetCompact(scale=m.scale, num_conv=m.num_blocks, features=m.features,
                                                    channels=m.channels, activation=m.activation,
                                                    dtype=jnp.dtype(m.dtype), rngs=rngs),
        fields=_SRVGG_FIELDS,
        receptive_field=lambda m: srvgg.receptive_field_radius(m.num_blocks),
        flops_per_output_pixel=lambda m: srvgg.flops_per_output_pixel(scale=m.scale, num_conv=m.num_blocks,
                                                                      features=m.features, channels=m.channels),
        scales=(1, 2, 3, 4)),  # 1: same size (the 1x restoration models people train).
    "edsr": Architecture(  # Baseline: 16 blocks, 64 features; paper: 32 blocks, 256 features, res_scale 0.1.
        build=lambda m, rngs: edsr.EDSR(**{k: m[k] for k in _EDSR_FIELDS}, dtype=jnp.dtype(m.dtype), rngs=rngs),
        fields=_EDSR_FIELDS,
        receptive_field=lambda m: edsr.receptive_field_radius(m.num_blocks, m.scale),
        flops_per_output_pixel=lambda m: edsr.flops_per_output_pixel(scale=m.scale, num_blocks=m.num_blocks,
                                                                     features=m.features, channels=m.channels)),
    "rcan": Architecture(  # Paper: 10 groups (num_groups) of 20 RCABs (num_blocks), 64 features, squeeze 16.
        build=lambda m, rngs: rcan.RCAN(**{k: m[k] for k in _RCAN_FIELDS}, dtype=jnp.dtype(m.dtype), rngs=rngs),
        fields=_RCAN_FIELDS, check=rcan.check_config,
        receptive_field=lambda m: rcan.receptive_field_radius(m.num_groups, m.num_blocks, m.scale),
        flops_per_output_pixel=lambda m: rcan.flops_per_output_pixel(
            **{k: m[k] for k in _RCAN_FIELDS if k != "res_scale"})),
    "swinir": Architecture(  # num_blocks RSTBs of num_layers Swin layers; features = embed_dim.
        build=lambda m, rngs: swinir.SwinIR(**{k: m[k] for k in _SWINIR_FIELDS}, dtype=jnp.dtype(m.dtype),
                                            drop_path_rate=float(m.get("drop_path_rate", 0.0)), rngs=rngs),
        fields=_SWINIR_FIELDS, check=swinir.check_config, drop_path=True,
        receptive_field=lambda m: swinir.receptive_field_radius(m.num_blocks, m.num_layers, m.window_size,
                                                                m.resi_connection),
        flops_per_output_pixel=lambda m: swinir.flops_per_output_pixel(
            **{k: m[k] for k in _SWINIR_FIELDS if k != "num_heads"}),
        tile_overlap=lambda m: 4 * m.window_size, min_side=lambda m: max(4, m.window_size),
        window_grid=lambda m: m.window_size),
    "hat": Architecture(  # num_blocks RHAGs of num_layers HABs; HAT 180 features, HAT-S 144 (compress/squeeze 24).
        build=lambda m, rngs: hat.HAT(**{k: m[k] for k in _HAT_FIELDS}, dtype=jnp.dtype(m.dtype),
                                      drop_path_rate=float(m.get("drop_path_rate", 0.0)), rngs=rngs),
        fields=_HAT_FIELDS, check=hat.check_config, drop_path=True, resi_connections=hat.RESI_CONNECTIONS,
        receptive_field=lambda m: hat.receptive_field_radius(m.num_blocks, m.num_layers, m.window_size,
                                                             m.overlap_ratio),
        flops_per_output_pixel=lambda m: hat.flops_per_output_pixel(
            **{k: m[k] for k in _HAT_FIELDS if k not in ("num_heads", "squeeze")}),
        tile_overlap=lambda m: 2 * m.window_size, min_side=lambda m: max(4, m.window_size),
        window_grid=lambda m: m.window_size),
    "isr_rdn": Architecture(  # idealo ISR's RDN (its up-sampler), for its published weights.
        build=lambda m, rngs: isr.ISRRDN(**{k: m[k] for k in _RDN_FIELDS}, dtype=jnp.dtype(m.dtype), rngs=rngs),
        fields=_RDN_FIELDS,
        receptive_field=lambda m: isr.rdn_receptive_field(m.num_blocks, m.num_layers),
        flops_per_output_pixel=lambda m: isr.rdn_flops_per_output_pixel(**{k: m[k] for k in _RDN_FIELDS})),
    "isr_rrdn": Architecture(  # idealo ISR's RRDN, for its published GAN weights.
        build=lambda m, rngs: isr.ISRRRDN(**{k: m[k] for k in _ISR_RRDN_FIELDS}, dtype=jnp.dtype(m.dtype),
                                          rngs=rngs),
        fields=_ISR_RRDN_FIELDS,
        receptive_field=lambda m: isr.rrdn_receptive_field(m.num_blocks, m.rdbs_per_block, m.num_layers),
        flops_per_output_pixel=lambda m: isr.rrdn_flops_per_output_pixel(**{k: m[k] for k in _ISR_RRDN_FIELDS})),
}


def default_config() -> ml_collections.ConfigDict:
  """config.model: every architecture's fields with their defaults (each architecture reads those it lists in
  ``ARCHITECTURES``); the defaults are the RDN paper's network."""
  c = ml_collections.ConfigDict()
  # Architecture (sr_jax.models.registry): 'rdn', 'rrdbnet' (ESRGAN / Real-ESRGAN), 'srvgg' (Real-ESRGAN's
  # SRVGGNetCompact), 'isr_rdn' / 'isr_rrdn' (idealo ISR's variants, for its published weights).
  c.name = "rdn"
  c.scale = 2  # Up-scaling factor: 2, 3 or 4.
  c.num_blocks = 16  # D: dense blocks (rrdbnet: RRDBs; srvgg: convs; edsr: res blocks; rcan: RCABs/group).
  c.num_layers = 8  # C: conv layers per block.
  c.growth = 64  # G: channels each layer adds.
  c.features = 64  # G0: block input/output channels.
  c.channels = 3  # Colour channels: 3 (RGB) or 1 (gray).
  c.rdbs_per_block = 3  # isr_rrdn only: dense blocks per residual-in-residual block (ISR's D).
  c.num_groups = 10  # rcan only: residual groups (num_blocks: RCABs per group; the paper 10 x 20).
  c.squeeze = 16  # rcan/hat: channel-attention squeeze factor (features must be a multiple; HAT 30).
  c.res_scale = 1.0  # edsr/rcan: residual scaling (EDSR paper size 0.1; not stored in weights).
  c.num_heads = 6  # swinir/hat: attention heads (num_blocks RSTBs/RHAGs of num_layers layers).
  c.window_size = 8  # swinir/hat: attention window side in LR pixels (HAT: 16).
  c.mlp_ratio = 2.0  # swinir/hat: MLP width / features.
  c.upsampler = "pixelshuffle"  # swinir: 'pixelshuffle', 'pixelshuffledirect' (light), 'nearest+conv'.
  c.resi_connection = "1conv"  # swinir: '1conv' or '3conv' (real-world large); hat: or 'identity'.
  c.compress_ratio = 3  # hat: the conv branch's channel reduction (HAT 3, HAT-S 24).
  c.overlap_ratio = 0.5  # hat: overlapping cross-attention windows are window x (1 + this).
  # swinir/hat: stochastic depth in training, rising linearly over the layers from 0 to this (the references
  # train with 0.1); no effect on inference, evaluation or exports.
  c.drop_path_rate = 0.0
  c.activation = "prelu"  # srvgg only: 'prelu' (the published models), 'relu' or 'leakyrelu'.
  c.dtype = "float32"  # Compute dtype: float32, or bfloat16 (parameters stay float32).
  # How convolutions run: 'auto' (= 'xla'), 'xla' (batched lax.conv) or 'wide' (batch laid side by side along the
  # width; faster on XLA:CPU before core/xla_flags.py's flag). Same parameters and results either way (to float
  # rounding); only speed differs (experiments/results/benchmarks.md).
  c.conv_impl = "auto"
  return c


def architecture(model_cfg: ModelConfig) -> Architecture:
  if model_cfg.name not in ARCHITECTURES:
    raise ValueError(f"config.model.name={model_cfg.name!r} is not an architecture; accepted: "
                     + ", ".join(repr(n) for n in ARCHITECTURES))
  return ARCHITECTURES[model_cfg.name]


class Keys:
  """The keys the constructors draw (``rngs.params()``), equal to ``nnx.Rngs(seed)``'s (``fold_in(key(seed), i)``
  for the i-th draw) but counted in Python. ``nnx.Rngs`` counts in a Variable, and under tracing (eval_shape, the
  jitted init) each count update asks a tracer for its sharding, whose error message scans the whole trace so
  far: quadratic in the number of layers (RCAN's 800 convolutions took 35 s to trace, now under a second).
  For constructors only; a module that needs keys when called (dropout) keeps an ``nnx.Rngs``."""

  def __init__(self, seed: int):
    self._key, self._count = jax.random.key(seed), 0

  def params(self) -> jax.Array:
    key = jax.random.fold_in(self._key, self._count)
    self._count += 1
    return key

  __call__ = default = params


def build_generator(model_cfg: ModelConfig, seed: int = 0) -> nnx.Module:
  return architecture(model_cfg).build(model_cfg, Keys(seed))


def generator_graphdef(model_cfg: ModelConfig) -> nnx.GraphDef:
  """The generator's static structure, without allocating parameters."""
  return nnx.graphdef(nnx.eval_shape(lambda: build_generator(model_cfg)))


def abstract_params(model_cfg: ModelConfig, sharding: jax.sharding.Sharding | None = None) -> nnx.State:
  """Shapes and dtypes of a generator's state (its parameters), placed with ``sharding``: a restore target."""
  state = nnx.state(nnx.eval_shape(lambda: build_generator(model_cfg)))
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), state)


def identity(model_cfg: ModelConfig) -> dict:
  """{'model.<field>': value} of the fields that define the checkpoint (name included)."""
  return {"model.name": model_cfg.name,
          **{f"model.{k}": model_cfg[k] for k in architecture(model_cfg).fields}}


def receptive_field(model_cfg: ModelConfig) -> int:
  return architecture(model_cfg).receptive_field(model_cfg)


def tile_overlap(model_cfg: ModelConfig) -> int:
  """The default overlap of tiled inference in LR pixels: the receptive field, or the architecture's own."""
  arch = architecture(model_cfg)
  return arch.tile_overlap(model_cfg) if arch.tile_overlap else arch.receptive_field(model_cfg)


def min_side(model_cfg: ModelConfig) -> int:
  return architecture(model_cfg).min_side(model_cfg)


def window_grid(model_cfg: ModelConfig) -> int:
  return architecture(model_cfg).window_grid(model_cfg)


def flops_per_output_pixel(model_cfg: ModelConfig) -> float:
  return architecture(model_cfg).flops_per_output_pixel(model_cfg)


def count_params(model_cfg: ModelConfig) -> int:
  model = nnx.eval_shape(lambda: build_generator(model_cfg))
  return sum(int(x.size) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


DISCRIMINATORS = ("patch", "unet_sn")
# Non-parameter state a discriminator carries between steps (spectral norm's power-iteration vectors).
DiscriminatorState = unet_discriminator.SpectralState


def build_discriminator(config: ml_collections.ConfigDict, seed: int = 0) -> nnx.Module:
  """The adversarial loss's discriminator (config.gan.discriminator), seeded apart from the generator."""
  g, dtype, rngs = config.gan, jnp.dtype(config.model.dtype), Keys(seed + 1)
  if g.discriminator == "unet_sn":
    return unet_discriminator.UNetDiscriminatorSN(channels=config.model.channels, features=g.features, dtype=dtype,
                                                  rngs=rngs)
  return discriminator.PatchDiscriminator(channels=config.model.channels, features=g.features,
                                          num_stages=g.num_stages, dtype=dtype, rngs=rngs)


def uses_gan(config: ml_collections.ConfigDict) -> bool:
  """Whether the run trains a discriminator (config.loss.adversarial > 0), so its checkpoints hold one."""
  return float(config.loss.adversarial) > 0


def to_unit(x: jax.Array) -> jax.Array:
  """uint8 pixels -> float32 in [0, 1]."""
  return x.astype(jnp.float32) / 255.0


def predict(params: nnx.State, lr_img: jax.Array, *, graphdef: nnx.GraphDef) -> jax.Array:
  """A generator's forward pass: uint8 (or [0, 1] float) LR batch -> SR batch as float [0, 1], unclipped. What
  validation, evaluation, upscaling and export all run (jit it with ``graphdef`` bound)."""
  x = to_unit(lr_img) if lr_img.dtype == jnp.uint8 else lr_img
  return nnx.merge(graphdef, params)(x)


def discriminator_graphdef(config: ml_collections.ConfigDict) -> nnx.GraphDef:
  return nnx.graphdef(nnx.eval_shape(lambda: build_discriminator(config)))


def validate(m: ModelConfig) -> None:
  """config.model: each field in its range, then the chosen architecture's own rules (``Architecture.check``)."""
  require(m.name in ARCHITECTURES, "model.name", m.name, ", ".join(map(repr, ARCHITECTURES)))
  scales = ARCHITECTURES[m.name].scales
  require(m.scale in scales, "model.scale", m.scale, f"{', '.join(map(str, scales))} for model.name={m.name!r}")
  for key in ("num_blocks", "num_layers", "growth", "features", "rdbs_per_block", "num_groups", "squeeze",
             "num_heads", "window_size"):
    require(int(m[key]) >= 1, f"model.{key}", m[key], "an integer >= 1")
  require(m.mlp_ratio > 0, "model.mlp_ratio", m.mlp_ratio, "a number > 0 (SwinIR's 2)")
  require(m.upsampler in swinir.UPSAMPLERS, "model.upsampler", m.upsampler, ", ".join(map(repr, swinir.UPSAMPLERS)))
  connections = ARCHITECTURES[m.name].resi_connections
  require(m.resi_connection in connections, "model.resi_connection", m.resi_connection,
          ", ".join(map(repr, connections)) + f" for model.name={m.name!r}")
  require(m.overlap_ratio >= 0, "model.overlap_ratio", m.overlap_ratio, "a ratio >= 0 (HAT's 0.5)")
  require(0 <= m.drop_path_rate < 1, "model.drop_path_rate", m.drop_path_rate, "a rate in [0, 1) (SwinIR's 0.1)")
  require(m.drop_path_rate == 0 or ARCHITECTURES[m.name].drop_path, "model.drop_path_rate", m.drop_path_rate,
          f"0 for model.name={m.name!r} (stochastic depth is SwinIR's and HAT's)")
  require(m.res_scale > 0, "model.res_scale", m.res_scale, "a number > 0 (1: off; EDSR's paper size 0.1)")
  require(m.channels in CHANNELS, "model.channels", m.channels, "1 (gray) or 3 (RGB)")
  require(m.dtype in DTYPES, "model.dtype", m.dtype, ", ".join(map(repr, DTYPES)))
  require(m.activation in srvgg.ACTIVATIONS, "model.activation", m.activation, ", ".join(map(repr, srvgg.ACTIVATIONS)))
  require(m.conv_impl in rdn.CONV_IMPLS, "model.conv_impl", m.conv_impl, ", ".join(map(repr, rdn.CONV_IMPLS)))
  ARCHITECTURES[m.name].check(m)
