"""train_and_evaluate(config, workdir): the training loop around the pure train step.

Mesh, model, optimizer, restore-or-init, the loop, periodic validation / checkpoints / logging. Re-running
with the same workdir resumes from the latest complete checkpoint; a finished run is not redone.
"""

from __future__ import annotations

import functools
import json
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from clu import metric_writers, periodic_actions
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from sr_jax import (checkpointing, config_lib, datasets, eval_lib, image_io, input_pipeline, losses, optim,
                    train_step)
from sr_jax.models import discriminator, rdn


class NonFiniteLossError(FloatingPointError):
  pass


def make_mesh(num_devices: int = 0) -> Mesh:
  """1-D data-parallel mesh over the first ``num_devices`` devices (0: all, every process)."""
  devices = jax.devices()
  if num_devices:
    devices = devices[:num_devices]
  return Mesh(np.array(devices), ("data",))


def build_model(model_cfg: ml_collections.ConfigDict, seed: int = 0) -> rdn.RDN:
  return rdn.RDN(scale=model_cfg.scale, num_blocks=model_cfg.num_blocks, num_layers=model_cfg.num_layers,
                 growth=model_cfg.growth, features=model_cfg.features, channels=model_cfg.channels,
                 dtype=jnp.dtype(model_cfg.dtype), conv_impl=model_cfg.get("conv_impl", "auto"),
                 rngs=nnx.Rngs(seed))


def uses_gan(config: ml_collections.ConfigDict) -> bool:
  return float(config.loss.get("adversarial", 0.0)) > 0


def build_discriminator(config: ml_collections.ConfigDict, seed: int = 0) -> discriminator.PatchDiscriminator:
  return discriminator.PatchDiscriminator(channels=config.model.channels, features=config.gan.features,
                                          num_stages=config.gan.num_stages, dtype=jnp.dtype(config.model.dtype),
                                          rngs=nnx.Rngs(seed + 1))


def state_initializer(config: ml_collections.ConfigDict):
  """(init_fn, tx, lr schedule, discriminator tx or None): init_fn() builds a fresh TrainState."""
  tx, schedule = optim.make_optimizer(config.train)
  disc_tx = optim.make_optimizer(optim.discriminator_config(config))[0] if uses_gan(config) else None

  def init_fn():
    params = nnx.state(build_model(config.model, config.seed))
    disc = nnx.state(build_discriminator(config, config.seed)) if disc_tx is not None else None
    return train_step.create_state(params, tx, disc, disc_tx)

  return init_fn, tx, schedule, disc_tx


def make_train_step(config: ml_collections.ConfigDict, tx, schedule, disc_tx):
  """(step(state, batch, frozen), frozen): the pure train step for this config (K steps over a K-stacked batch
  when train.steps_per_dispatch=K) and the frozen loss arrays
  (perceptual VGG weights, loaded here: a missing file fails before any compilation)."""
  loss, frozen = losses.build(config)
  graphdef = nnx.graphdef(nnx.eval_shape(lambda: build_model(config.model, config.seed)))
  disc_graphdef = (nnx.graphdef(nnx.eval_shape(lambda: build_discriminator(config, config.seed)))
                   if disc_tx is not None else None)
  step = functools.partial(train_step.train_step, graphdef=graphdef, tx=tx, loss=loss, learning_rate_fn=schedule,
                           disc_graphdef=disc_graphdef, disc_tx=disc_tx)
  if config.train.get("steps_per_dispatch", 1) > 1:  # Batches then carry a leading axis of that many steps.
    step = functools.partial(train_step.scan_steps, step)
  return step, frozen


def global_batch(local: dict[str, np.ndarray], sharding: NamedSharding) -> dict[str, jax.Array]:
  return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in local.items()}


def _write_json(path: str, obj) -> None:
  tmp = path + ".tmp"
  with open(path + ".tmp", "w") as f:
    json.dump(obj, f, indent=1)
  os.replace(tmp, path)


def _check_workdir_config(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Refuses to resume a workdir trained with another architecture/scale; records the config."""
  path = os.path.join(workdir, "config.json")
  if os.path.exists(path):
    with open(path) as f:
      saved = json.load(f)
    conflicts = config_lib.resume_conflicts(saved, config)
    if conflicts:
      raise config_lib.ConfigError(
          f"workdir {workdir} holds a run of a different model; refusing to resume it ("
          + "; ".join(conflicts) + "). Use a new --workdir.")
  if jax.process_index() == 0:
    _write_json(path, json.loads(config.to_json()))


class Validator:
  """Full-image validation on the held-out sets, the papers' protocol (eval_lib)."""

  def __init__(self, config: ml_collections.ConfigDict, mesh: Mesh, graphdef: nnx.GraphDef):
    scale = config.model.scale
    self.scale = scale
    self.num_triplets = config.num_image_triplets
    self.sets = {}
    for spec in datasets.split_sources(config.data.val):
      images = datasets.load_source(spec, data_dir=config.data.data_dir, tfds_data_dir=config.data.tfds_data_dir,
                                    tfds_manual_dir=config.data.tfds_manual_dir, keep_gray=True,
                                    max_pixels=config.data.max_image_pixels,
                                    min_size=eval_lib.min_eval_size(scale))
      self.sets[images.name] = eval_lib.prepare(images, scale, config.data.max_val_images)
    self.replicated = NamedSharding(mesh, P())
    self.channels = config.model.channels
    self._predict = jax.jit(functools.partial(train_step.predict, graphdef=graphdef),
                            out_shardings=self.replicated)

  def upscale(self, params, lr: np.ndarray) -> np.ndarray:
    x = (lr if self.channels == 3 else image_io.rgb_to_gray_uint8(lr))[None]
    x = jax.make_array_from_process_local_data(self.replicated, x)
    return np.asarray(self._predict(params, x).addressable_data(0))[0]

  def __call__(self, params) -> tuple[dict, dict]:
    """Returns ({set: summary}, {image tag: HR|bicubic|SR uint8 triplet})."""
    results, images = {}, {}
    for name, pairs in self.sets.items():
      summary, _, outputs = eval_lib.score_set(pairs, functools.partial(self.upscale, params), self.scale,
                                               keep_outputs=self.num_triplets)
      results[name] = summary
      for pair, sr in zip(pairs, outputs):
        images[f"val/{name}/{pair.name}"] = eval_lib.triplet(pair, sr)[None]
    return results, images


def init_params_from(source: str, params):
  """Copies every parameter of the run at ``source`` whose path and shape match into ``params``."""
  from sr_jax import inference
  workdir, step = inference.split_checkpoint_path(source)
  _, _, src, src_step = inference.load_run(workdir, step)
  src_flat = dict(nnx.to_flat_state(src))
  copied, skipped, out = 0, [], []
  for path, var in nnx.to_flat_state(params):
    other = src_flat.get(path)
    if other is not None and other.shape == var.shape:
      out.append((path, var.replace(np.asarray(other[...]))))
      copied += 1
    else:
      out.append((path, var))
      skipped.append("/".join(map(str, path)))
  if not copied:
    raise config_lib.ConfigError(f"config.train.init_from={source!r}: no parameter matches this model")
  logging.info("Initialised %d parameters from %s (step %s); kept random: %s", copied, workdir, src_step,
               ", ".join(skipped) or "none")
  return nnx.from_flat_state(out)


def _format_eta(seconds: float) -> str:
  seconds = int(max(0, seconds))
  h, rem = divmod(seconds, 3600)
  return f"{h}h{rem // 60:02d}m" if h else f"{rem // 60}m{rem % 60:02d}s"


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       _crash_after_step: int | None = None):
  """Trains (or resumes) the run in ``workdir``; returns the final TrainState.

  ``_crash_after_step`` (tests only) stops right after that step without saving, like a killed process.
  """
  n_dev = len(jax.devices())
  config_lib.validate(config, num_devices=n_dev, process_count=jax.process_count())
  os.makedirs(workdir, exist_ok=True)
  _check_workdir_config(config, workdir)
  is_main = jax.process_index() == 0
  cfg_t, scale = config.train, config.model.scale

  mesh = make_mesh(cfg_t.num_devices)
  replicated, batch_sharding = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
  init_state, tx, schedule, disc_tx = state_initializer(config)
  graphdef = nnx.graphdef(nnx.eval_shape(lambda: build_model(config.model, config.seed)))
  abstract_state = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated),
                                jax.eval_shape(init_state))
  ckpt = checkpointing.Checkpointer(workdir, keep=config.keep_checkpoints)
  latest = ckpt.latest_step()
  start_step = latest or 0
  if latest is not None and start_step >= cfg_t.num_steps:
    logging.info("Run in %s already finished (%d/%d steps); nothing to do.", workdir, start_step,
                 cfg_t.num_steps)
    state, _ = ckpt.restore(start_step, abstract_state)
    ckpt.close()
    return state

  # Data first: everything that can fail on user input fails before any compilation.
  hr_size = config.data.patch_size * scale
  try:
    train_images = datasets.load_source(
        config.data.train, data_dir=config.data.data_dir, tfds_data_dir=config.data.tfds_data_dir,
        tfds_manual_dir=config.data.tfds_manual_dir, max_pixels=config.data.max_image_pixels, min_size=hr_size,
        cache_gb=config.data.cache_gb, lr_scale=scale if config.data.lr_from_dataset else 0)
    validator = Validator(config, mesh, graphdef)
    step, frozen = make_train_step(config, tx, schedule, disc_tx)
  except BaseException:
    ckpt.close()
    raise
  logging.info("Training on %d images of %s (%d skipped)", len(train_images), config.data.train,
               len(train_images.skipped))
  if latest is not None:
    logging.info("Resuming from %s at step %d", ckpt.directory, start_step)
    state, _ = ckpt.restore(start_step, abstract_state)
  else:
    state = jax.jit(init_state, out_shardings=replicated)()
    if cfg_t.init_from:
      state = state.replace(params=jax.device_put(init_params_from(cfg_t.init_from, state.params), replicated))
  dataset = input_pipeline.train_dataset(
      train_images, patch_size=config.data.patch_size, scale=scale, global_batch=cfg_t.batch_size,
      seed=config.seed, start_step=start_step, augment=config.data.augment,
      process_index=jax.process_index(), process_count=jax.process_count(), channels=config.model.channels)
  batches = dataset.as_numpy_iterator()

  frozen = jax.device_put(frozen, replicated)
  per_call = cfg_t.get("steps_per_dispatch", 1)
  if per_call > 1:
    if start_step % per_call:
      raise config_lib.ConfigError(
          f"config.train.steps_per_dispatch={per_call}: the run in {workdir} resumes from step {start_step}, "
          f"not a multiple; use a divisor of {start_step}")
    batch_sharding = NamedSharding(mesh, P(None, "data"))
  step_fn = jax.jit(step, in_shardings=(replicated, batch_sharding, replicated),
                    out_shardings=(replicated, replicated), donate_argnums=0)

  def next_batch():
    if per_call == 1:
      return global_batch(next(batches), batch_sharding)
    group = [next(batches) for _ in range(per_call)]
    return global_batch({k: np.stack([b[k] for b in group]) for k in group[0]}, batch_sharding)

  writer = metric_writers.create_default_writer(workdir, just_logging=not is_main)
  if start_step == 0:
    writer.write_hparams({k: v for k, v in _flatten(config.to_dict()).items()})
  report_progress = periodic_actions.ReportProgress(num_train_steps=cfg_t.num_steps, writer=writer)
  num_params = sum(int(x.size) for x in jax.tree.leaves(state.params))
  gflop_per_patch = rdn.flops_per_output_pixel(
      scale=scale, num_blocks=config.model.num_blocks, num_layers=config.model.num_layers,
      growth=config.model.growth, features=config.model.features, channels=config.model.channels
  ) * hr_size**2 * 3 / 1e9  # forward + backward ~ 3x forward.
  logging.info("RDN with %s parameters on a mesh of %d devices (%d processes); global batch %d",
               f"{num_params:,}", mesh.size, jax.process_count(), cfg_t.batch_size)

  val_path = os.path.join(workdir, "validation.json")
  history = {"scale": scale, "history": []}
  if os.path.exists(val_path):
    with open(val_path) as f:
      history = json.load(f)
    history["history"] = [h for h in history["history"] if h["step"] <= start_step]
  # Training wall time carried across restarts (the report plots PSNR against it).
  wall_offset = history["history"][-1].get("wall_time_s", 0.0) if history["history"] else 0.0
  run_start = time.time()

  def check_finite():
    bad = int(jax.device_get(state.first_bad_step.addressable_data(0)))
    if bad >= 0:
      raise NonFiniteLossError(
          f"loss or gradients became NaN/Inf at step {bad}; stopping. The last good checkpoint "
          f"(step {ckpt.latest_step()}) is kept in {ckpt.directory}. Lower train.learning_rate or set "
          "train.grad_clip.")

  pending, t_last, step_last = [], time.time(), start_step
  try:
    with metric_writers.ensure_flushes(writer):
      for step in range(start_step + per_call, cfg_t.num_steps + 1, per_call):
        state, metrics = step_fn(state, next_batch(), frozen)
        pending.append(metrics)
        report_progress(step)
        last = step == cfg_t.num_steps
        if step % config.log_every == 0 or last:
          check_finite()
          means = {k: float(np.mean(v)) for k, v in jax.device_get(
              jax.tree.map(lambda *xs: jnp.stack(xs), *pending)).items()}
          pending = []
          now = time.time()
          patches_s = (step - step_last) * cfg_t.batch_size / max(now - t_last, 1e-9)
          means.update(patches_per_sec=patches_s, gflops_per_sec=patches_s * gflop_per_patch)
          writer.write_scalars(step, {f"train/{k}": v for k, v in means.items()})
          logging.info("step %d/%d  loss %.5f  lr %.2e  %.0f patches/s  ETA %s", step, cfg_t.num_steps,
                       means["loss"], means["learning_rate"], patches_s,
                       _format_eta((cfg_t.num_steps - step) * (now - t_last) / max(step - step_last, 1)))
          t_last, step_last = now, step
        val_metrics = None
        if step % config.eval_every == 0 or last:
          check_finite()
          results, images = validator(state.params)
          for name, r in results.items():
            writer.write_scalars(step, {f"val/{name}/{k}": v for k, v in r.items()})
            logging.info("validation %s step %d: PSNR %.3f dB (bicubic %.3f), SSIM %.4f (bicubic %.4f)",
                         name, step, r["psnr"], r["bicubic_psnr"], r["ssim"], r["bicubic_ssim"])
          writer.write_images(step, images)
          history["history"].append({"step": step, "wall_time_s": round(wall_offset + time.time() - run_start, 1),
                                     "sets": results})
          first = next(iter(results.values()))
          best = history.get("best")
          if best is None or first["psnr"] > best["psnr"]:
            history["best"] = {"step": step, "psnr": first["psnr"], "set": next(iter(results))}
          if is_main:
            _write_json(val_path, history)
          val_metrics = {checkpointing.BEST_METRIC: first["psnr"]}
        if (step % config.checkpoint_every == 0 or last or val_metrics is not None
            or ckpt.reached_preemption(step)):
          check_finite()
          ckpt.save(step, state, {"step": step, "scale": scale}, metrics=val_metrics)
          if ckpt.reached_preemption(step):
            logging.warning("Preemption signal at step %d: checkpoint saved, exiting.", step)
            break
        if _crash_after_step is not None and step == _crash_after_step:
          return state
  finally:
    ckpt.close()
  return state


def _flatten(d: dict, prefix: str = "") -> dict:
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flatten(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v
  return out
