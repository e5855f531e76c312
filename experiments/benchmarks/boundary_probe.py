r"""What a jit call's host cost depends on, with a trivial update of 904 arrays (the paper RDN's train state has
904): the time until the call returns (device idle, inputs ready), for each way the arrays can cross the boundary.
One JSON line per way.

  python -m experiments.benchmarks.boundary_probe [--arrays=904] [--calls=30]
"""

from __future__ import annotations

import json
import statistics
import time

import jax
import jax.numpy as jnp
from absl import app, flags

from sr_jax.core import boundary

flags.DEFINE_integer("arrays", 904, "Arrays in the state.")
flags.DEFINE_integer("calls", 30, "Timed calls (median).")
FLAGS = flags.FLAGS


def _return_ms(call) -> float:
  jax.block_until_ready(call())  # Compiles.
  times = []
  for _ in range(FLAGS.calls):
    t0 = time.perf_counter()
    out = call()
    times.append(time.perf_counter() - t0)
    jax.block_until_ready(out)
  return 1e3 * statistics.median(times)


def _carried(fn, init):
  """A call that carries its donated input from call to call, as a train loop carries its state."""
  step, carry = jax.jit(fn, donate_argnums=0), {"x": init}

  def call():
    carry["x"] = step(carry["x"])
    return carry["x"]
  return call


def main(argv):
  del argv
  leaves = [jnp.ones((64, 64, 3, 3)) for _ in range(FLAGS.arrays)]
  packing = boundary.Packing(leaves)  # The trainer's packing (one buffer per dtype).

  def update_packed(bufs):  # Unpack, update each array, pack again: all inside the jit.
    return packing.pack([x * 1.0001 for x in packing.unpack(bufs)])
  ways = {
      "list_in_list_out": _carried(lambda xs: [x * 1.0001 for x in xs], leaves),
      "one_packed_buffer_in_and_out": _carried(update_packed, packing.pack(leaves)),
  }
  for name, call in ways.items():
    print(json.dumps({"benchmark": "jit_boundary_probe", "way": name, "arrays": FLAGS.arrays, "donated": True,
                      "device": jax.devices()[0].platform, "ms_until_the_call_returns": round(_return_ms(call), 3)}),
          flush=True)


if __name__ == "__main__":
  app.run(main)
