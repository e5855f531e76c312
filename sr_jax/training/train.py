"""train_and_evaluate(config, workdir): the story of the training loop.

Everything else lives where it belongs: the step (``train_step``), the state (``state``), the data
(``datasets``, ``input_pipeline``), validation (``eval_lib.Validator``), the workdir (``run_dir``) and when to save
or stop (``checkpointing``). Re-running with the same workdir resumes from the latest complete checkpoint; a
finished run is not redone.
"""

from __future__ import annotations

import collections
import contextlib
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from clu import metric_writers, periodic_actions
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from sr_jax import metrics
from sr_jax.core import errors
from sr_jax.core.errors import UserError
from sr_jax.data import datasets, input_pipeline
from sr_jax.data.degradations import realesrgan, workers as degradation_workers
from sr_jax.evaluation import eval_lib
from sr_jax.hub import model_zoo
from sr_jax.models import registry
from sr_jax.training import carried as carried_lib, config_lib, state as state_lib, train_step, train_workdir
from sr_jax.workdir import checkpointing, run_dir


class NonFiniteLossError(UserError, FloatingPointError):
  """Training diverged; the message names the step and the last good checkpoint."""


def make_mesh(num_devices: int = 0) -> Mesh:
  """1-D data-parallel mesh over the first ``num_devices`` devices (0: all, every process)."""
  devices = jax.devices()
  return Mesh(np.array(devices[:num_devices] if num_devices else devices), ("data",))


def load_train_images(config: ml_collections.ConfigDict) -> datasets.ImageSet:
  d, scale = config.data, config.model.scale
  images = datasets.load_source(d.train, data_dir=d.data_dir, tfds_data_dir=d.tfds_data_dir,
                                tfds_manual_dir=d.tfds_manual_dir, max_pixels=d.max_image_pixels,
                                min_size=d.patch_size * scale, cache_gb=d.cache_gb,
                                lr_scale=scale if d.lr_from_dataset else 0)
  logging.info("Training on %d images of %s (%d skipped); preparing the validation images, the model and the input "
               "pipeline", len(images), d.train, len(images.skipped))
  return images


def resume(config: ml_collections.ConfigDict, ckpt: checkpointing.Checkpointer, sharding: NamedSharding
           ) -> tuple[state_lib.TrainState | None, int]:
  """(state, step) of the newest readable checkpoint, or (None, 0) for a new run.

  Newer checkpoints that cannot be read are moved to ``WORKDIR/unreadable_checkpoints/`` (never deleted) with a
  warning naming each, so that the run can save those steps again; if none is readable the run stops, naming them.
  """
  steps = sorted(ckpt.all_steps(), reverse=True)
  if not steps:
    return None, 0
  state, step, passed = ckpt.restore_newest(state_lib.abstract_state(config, sharding), steps)
  for bad in passed:
    if jax.process_count() > 1:
      raise checkpointing.CheckpointUnreadableError(f"{bad}; move it out of {ckpt.directory} on every host and "
                                                    "run again to resume from the newest readable one", bad.step)
    logging.warning("Resuming from step %d; unreadable checkpoint %d moved to %s (not deleted)", step, bad.step,
                    ckpt.set_aside(bad.step))
  logging.info("Resuming from %s at step %d", ckpt.directory, step)
  return state, step


PRETRAINED = "pretrained:"


def init_source(config: ml_collections.ConfigDict) -> str:
  """The workdir or checkpoint ``config.train.init_from`` names. 'pretrained:NAME' is a published model (imported
  into the cache on first use), refused unless config.model is that network: its every parameter is copied, so a
  fine-tune starts from exactly the published model."""
  source = config.train.init_from
  if not source.startswith(PRETRAINED):
    return source
  name = source[len(PRETRAINED):]
  model_zoo.entry(name)  # An unknown name: the error lists the known ones.
  workdir = model_zoo.ensure(name)
  published = registry.identity(run_dir.load_config(workdir).model)
  ours = {k: config.model.get(k[len("model."):]) for k in published}  # Its fields, whatever config.model.name is.
  diff = [f"{k}={ours[k]!r} (published: {published[k]!r})" for k in published if ours[k] != published[k]]
  if diff:
    fix = " ".join(f"--config.{k}={v}" for k, v in published.items())
    raise config_lib.ConfigError(f"config.train.init_from={source!r}: this config's network is not the published "
                                 f"one: {'; '.join(diff)}. Fine-tuning needs the same network: {fix}")
  return workdir


def restore_or_init(config: ml_collections.ConfigDict, restored: state_lib.TrainState | None,
                    opt: state_lib.Optimizers, sharding: NamedSharding, source: str | None = None
                    ) -> state_lib.TrainState:
  if restored is not None:
    return restored
  state = jax.jit(state_lib.init_fn(config, opt), out_shardings=sharding)()
  source = init_source(config) if source is None else source
  if source:
    params = jax.device_put(train_workdir.init_params_from(source, state.params), sharding)
    state = state.replace(params=params, ema_params=None if state.ema_params is None
                          else jax.tree.map(jnp.copy, params))
  return state


class TrainLog:
  """Averages the step metrics between log points and adds throughput (patches/s, GFLOP/s) and an ETA.

  Log points: every config.log_every steps, the first step (its line says how long compiling and running it took,
  instead of a rate), and whenever ``EVERY_S`` seconds passed without a line (``due``), so a slow run is never
  silent for minutes. The ETA is the time a step has taken over the run so far (validation and saving included),
  counted from the first log point (so the compilation before it does not inflate it), times the steps left: it
  settles instead of swinging with each interval's load."""

  EVERY_S = 60.0

  def __init__(self, config: ml_collections.ConfigDict, start_step: int, clock=time.time):
    self.batch_size, self.num_steps, self.clock = config.train.batch_size, config.train.num_steps, clock
    hr_pixels = (config.data.patch_size * config.model.scale) ** 2
    self.gflop_per_patch = 3 * registry.flops_per_output_pixel(config.model) * hr_pixels / 1e9  # fwd + bwd.
    self.pending, self.step, self.time = [], start_step, clock()
    self.since: tuple[int, float] | None = None  # (step, time) of the first log point.
    k = config.train.steps_per_dispatch
    logging.info("Compiling the train step (%d patches of %d² HR pixels%s); the first step's line follows",
                 self.batch_size, config.data.patch_size * config.model.scale, f", {k} per call" if k > 1 else "")

  def add(self, metrics: dict) -> None:
    self.pending.append(metrics)

  def eta(self, step: int, now: float) -> str:
    if self.since is None or step <= self.since[0]:
      return ""
    left = (self.num_steps - step) * (now - self.since[1]) / (step - self.since[0])
    return f"  ETA {int(left // 3600)}h{int(left % 3600 // 60):02d}m" if left >= 3600 else \
        f"  ETA {int(left // 60)}m{int(left % 60):02d}s"

  def due(self) -> bool:
    """Whether a line is due although ``log_every`` is not: the first step, or ``EVERY_S`` without a line."""
    return self.since is None or self.clock() - self.time >= self.EVERY_S

  def flush(self, step: int) -> dict[str, float]:
    stacked = jax.device_get(jax.tree.map(lambda *xs: jnp.stack(xs), *self.pending))
    means = {k: float(np.mean(v)) for k, v in stacked.items()}
    now = self.clock()
    patches_s = (step - self.step) * self.batch_size / max(now - self.time, 1e-9)
    means.update(patches_per_sec=patches_s, gflops_per_sec=patches_s * self.gflop_per_patch)
    rate = (f"{patches_s:.0f} patches/s{self.eta(step, now)}" if self.since else
            f"first step{'s' if step - self.step > 1 else ''}, compilation included: {now - self.time:.1f} s")
    logging.info("step %d/%d  loss %.5f  lr %.2e  %s", step, self.num_steps, means["loss"], means["learning_rate"],
                 rate)
    self.since = self.since or (step, now)
    self.pending, self.step, self.time = [], step, now
    return {f"train/{k}": v for k, v in means.items()}


def _log_validation(results: dict[str, dict], when: str, scale: int) -> None:
  base = "bicubic" if scale > 1 else "input"  # At scale 1 the 'bicubic' figures are the degraded input's own.
  for name, r in results.items():
    extra = "".join(f", {m.upper()} {r[m]:.4f} ({base} {r[f'bicubic_{m}']:.4f})" for m in metrics.EXTRA
                    if m in r)
    logging.info("validation %s %s: PSNR %.3f dB (%s %.3f), SSIM %.4f (%s %.4f)%s", name, when, r["psnr"], base,
                 r["bicubic_psnr"], r["ssim"], base, r["bicubic_ssim"], extra)


def validate_start(validator: eval_lib.Validator, params, log: train_workdir.ValidationLog, init_from: str) -> None:
  """Scores the weights a fresh run starts from (train.init_from): the 'before' of a fine-tune."""
  logging.info("Scoring the weights it starts from (%s) on the validation images before training", init_from)
  results, _ = validator(params)
  _log_validation(results, f"before training ({init_from})", validator.scale)
  log.add_start(init_from, results)


def validate(validator: eval_lib.Validator, params, step: int, writer, log: train_workdir.ValidationLog,
             wall_time_s: float) -> dict[str, float]:
  """Scores ``params`` on the validation sets, writes the results; returns the checkpoint's metrics."""
  results, images = validator(params)
  for name, r in results.items():
    writer.write_scalars(step, {f"val/{name}/{k}": v for k, v in r.items()})
  _log_validation(results, f"step {step}", validator.scale)
  writer.write_images(step, images)
  log.add(step, wall_time_s, results)
  first = next(iter(results.values()))
  return {f"val_{k}": first[k] for k in metrics.RANKABLE if k in first}


def check_finite(state: state_lib.TrainState, ckpt: checkpointing.Checkpointer) -> None:
  bad = int(jax.device_get(state.first_bad_step.addressable_data(0)))
  if bad >= 0:
    last = ckpt.latest_step()
    kept = (f"The last good checkpoint (step {last}) is kept in {ckpt.directory}" if last is not None else
            "No checkpoint was written (it stopped before the first save)")
    raise NonFiniteLossError(f"loss or gradients became NaN/Inf at step {bad}; stopping. {kept}. Lower "
                             "train.learning_rate or set train.grad_clip.")


def make_writer(workdir: str) -> metric_writers.MetricWriter:
  """TensorBoard summaries from process 0 (the console gets the one progress line of TrainLog, not every metric)."""
  if jax.process_index() > 0:
    return metric_writers.MultiWriter([])
  return metric_writers.AsyncMultiWriter([metric_writers.SummaryWriter(workdir)])


def summary_line(config: ml_collections.ConfigDict, workdir: str, step: int, seconds: float,
                 val_log: train_workdir.ValidationLog, stop_signal: str | None) -> str:
  done = (f"Stopped by {stop_signal} at step {step}/{config.train.num_steps} after {seconds / 60:.1f} min: "
          "checkpoint saved; run the same command to resume" if stop_signal
          else f"Finished {step} steps in {seconds / 60:.1f} min")
  best = val_log.data.get("best")
  m = config.best_metric
  start = val_log.data.get("start", {}).get("sets", {}).get(best["set"] if best else "", {})
  before = f" (before training: {start[m]:.4g})" if best and m in start else ""
  best = (f"; best {best['set']} {m.upper()} {best[m]:.4g} at step {best['step']}{before}" if best and m in best
          else "")
  return f"{done}{best}; workdir {workdir}"


@contextlib.contextmanager
def disk_full_stops_the_run(workdir: str):
  """A full disk, whichever writer hits it first (a checkpoint, the TensorBoard summaries, validation.json), ends
  the run with one DiskFullError naming the checkpoints that are intact."""
  try:
    yield
  except checkpointing.CheckpointSaveError:
    raise
  except Exception as e:
    if errors.is_disk_full(e):
      kept = checkpointing.saved_steps(os.path.join(workdir, "checkpoints"))
      raise errors.DiskFullError(
          f"the disk holding {workdir} is full; training stopped. Checkpoints intact: {kept or 'none'}; free space "
          "and re-run the same command to resume from the latest of them.") from e
    raise


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       allow_config_change: bool = False) -> state_lib.TrainState:
  """Trains (or resumes) the run in ``workdir``; returns the final TrainState. Resuming with a config whose recipe
  differs from the run's is refused unless ``allow_config_change`` (then recorded: ``train_workdir.record_config``)."""
  config_lib.validate(config, num_devices=len(jax.devices()), process_count=jax.process_count())
  source = init_source(config)  # Before any work: a published model that does not fit is refused now.
  train_workdir.check_training_workdir(workdir)
  os.makedirs(workdir, exist_ok=True)
  logging.info("JAX process %d/%d, devices: %s", jax.process_index(), jax.process_count(), jax.devices())
  cfg_t, k = config.train, config.train.steps_per_dispatch
  mesh = make_mesh(cfg_t.num_devices)
  replicated = NamedSharding(mesh, P())
  batch_sharding = NamedSharding(mesh, P(None, "data") if k > 1 else P("data"))  # K-stacked batches.
  opt = state_lib.Optimizers.from_config(config)
  with disk_full_stops_the_run(workdir), train_workdir.WorkdirLock(workdir), checkpointing.Checkpointer(
      workdir, keep=config.keep_checkpoints, save_every=config.checkpoint_every, handle_signals=True,
      best_metric=config.best_metric) as ckpt:
    changes = {}
    if ckpt.latest_step() is not None:  # A workdir without checkpoints is new, whatever config.json it holds.
      changes = train_workdir.check_config(config, workdir, allow_config_change)
    restored, start_step = resume(config, ckpt, replicated)
    if start_step >= cfg_t.num_steps:
      logging.info("Run in %s already finished (%d/%d steps); nothing to do.", workdir, start_step,
                   cfg_t.num_steps)
      return restored
    if start_step % k:
      raise config_lib.ConfigError(
          f"config.train.steps_per_dispatch={k}: the run in {workdir} resumes from step {start_step}, not a "
          f"multiple; use a divisor of {start_step}")

    # Data first: everything that can fail on user input fails before any compilation.
    train_images = load_train_images(config)
    validator = eval_lib.Validator(config, mesh, registry.generator_graphdef(config.model))
    step_fn, frozen = train_step.build(config, opt)
    state = restore_or_init(config, restored, opt, replicated, source)
    batches = input_pipeline.train_dataset(
        train_images, patch_size=config.data.patch_size, scale=config.model.scale, global_batch=cfg_t.batch_size,
        seed=config.seed, start_step=start_step, augment=config.data.augment,
        process_index=jax.process_index(), process_count=jax.process_count(), channels=config.model.channels,
        steps_per_call=k, degradation=realesrgan.from_data_config(config),
        degradation_workers=degradation_workers.resolve(config.data.degradation_workers)).as_numpy_iterator()
    frozen = jax.device_put(frozen, replicated)
    carried = carried_lib.CarriedState(state, replicated, cfg_t.state_layout)  # Packed or a list, not a pytree.
    del state
    step_fn = carried.jit_step(step_fn, in_shardings=(replicated, batch_sharding, replicated),
                               out_shardings=(replicated, replicated))

    train_workdir.record_config(config, workdir, changes, start_step)
    writer = make_writer(workdir)
    if start_step == 0:
      writer.write_hparams(dict(_flatten(config.to_dict())))
    logging.info("%s with %s parameters on a mesh of %d devices (%d processes); global batch %d",
                 config.model.name.upper(), f"{registry.count_params(config.model):,}", mesh.size,
                 jax.process_count(), cfg_t.batch_size)
    hooks = [periodic_actions.ReportProgress(num_train_steps=cfg_t.num_steps, writer=writer)]
    if config.profile_steps:
      hooks.append(periodic_actions.Profile(logdir=workdir, num_profile_steps=config.profile_steps,
                                            first_profile=start_step + 10 * k, every_secs=None))
    val_log = train_workdir.ValidationLog(workdir, config.model.scale, start_step, config.best_metric)
    run_start, step = time.time(), start_step
    if start_step == 0 and source and "start" not in val_log.data:
      validate_start(validator, carried.state().eval_params(), val_log, config.train.init_from)
    train_log = TrainLog(config, start_step)  # Its clock starts now: the first line times the compilation.
    in_flight = collections.deque()  # The metrics of the steps dispatched and maybe not yet run.
    with metric_writers.ensure_flushes(writer):
      for step in range(start_step + k, cfg_t.num_steps + 1, k):
        batch = {n: jax.make_array_from_process_local_data(batch_sharding, v) for n, v in next(batches).items()}
        in_flight.append(carried.step(step_fn, batch, frozen))
        train_log.add(in_flight[-1])
        if len(in_flight) > 1:  # One step queued behind the one running, no more: a stop is heard within a step.
          jax.block_until_ready(in_flight.popleft())
        for hook in hooks:
          hook(step)
        last = step == cfg_t.num_steps
        if step % config.log_every == 0 or last or train_log.due():
          check_finite(carried.state(), ckpt)
          writer.write_scalars(step, train_log.flush(step))
        val_metrics = None
        if step % config.eval_every == 0 or last:
          check_finite(carried.state(), ckpt)
          with hooks[0].timed("validation"):
            val_metrics = validate(validator, carried.state().eval_params(), step, writer, val_log,
                                   time.time() - run_start)
        if ckpt.maybe_save(step, carried.state, {"step": step, "scale": config.model.scale}, last=last,
                           metrics=val_metrics, before_save=lambda: check_finite(carried.state(), ckpt)):
          break
    logging.info(summary_line(config, workdir, step, time.time() - run_start, val_log,
                              ckpt.stop_signal or ("preemption" if step < cfg_t.num_steps else None)))
  return carried.state()


def _flatten(d: dict, prefix: str = ""):
  for k, v in d.items():
    if isinstance(v, dict):
      yield from _flatten(v, f"{prefix}{k}.")
    else:
      yield f"{prefix}{k}", v
