r"""One 3x3 convolution (lax.conv, NHWC/HWIO) timed forward, grad wrt input and grad wrt kernel; JSON lines.

  python -m experiments.benchmarks.conv_micro --shapes=4x32x32,1x128x128,1x32x132 --cin=64,320,576

Shows where XLA:CPU's convolution is slow (see experiments/results/benchmarks.md); compare with a matmul of
the same FLOPs, the machine's practical ceiling.
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
from absl import app, flags
from jax import lax

from experiments.benchmarks import timing

flags.DEFINE_list("shapes", ["4x32x32", "1x128x128", "1x32x132"], "NxHxW of the input.")
flags.DEFINE_list("cin", ["64", "320", "576"], "Input channels (dense-block widths of the paper RDN).")
flags.DEFINE_integer("cout", 64, "Output channels.")
flags.DEFINE_integer("repeats", 5, "Timed calls; the median is reported.")
FLAGS = flags.FLAGS


def _median_s(fn, *args) -> float:
  fn = jax.jit(fn)
  return timing.warmup_then_median(lambda: fn(*args), FLAGS.repeats, jax.block_until_ready)[1]


def main(argv):
  del argv
  conv = lambda x, w: lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
  for shape in FLAGS.shapes:
    n, h, w = (int(v) for v in shape.split("x"))
    for cin in (int(c) for c in FLAGS.cin):
      keys = jax.random.split(jax.random.PRNGKey(0), 3)
      x = jax.random.normal(keys[0], (n, h, w, cin))
      k = jax.random.normal(keys[1], (3, 3, cin, FLAGS.cout)) * 0.01
      g = jax.random.normal(keys[2], (n, h, w, FLAGS.cout))
      gflop = 2 * n * h * w * 9 * cin * FLAGS.cout / 1e9
      a = jnp.ones((n * h * w, 9 * cin))
      b = jnp.ones((9 * cin, FLAGS.cout))
      times = {
          "forward": _median_s(conv, x, k),
          "grad_input": _median_s(lambda x, k, g: jax.vjp(lambda x: conv(x, k), x)[1](g)[0], x, k, g),
          "grad_kernel": _median_s(lambda x, k, g: jax.vjp(lambda k: conv(x, k), k)[1](g)[0], x, k, g),
          "matmul_same_flops": _median_s(jnp.dot, a, b),
      }
      print(json.dumps({"benchmark": "conv3x3", "device": jax.devices()[0].platform, "jax": jax.__version__,
                        "shape": [n, h, w, cin], "cout": FLAGS.cout, "gflop": round(gflop, 3),
                        **{f"{key}_gflops_per_s": round(gflop / t, 1) for key, t in times.items()}}), flush=True)


if __name__ == "__main__":
  app.run(main)
