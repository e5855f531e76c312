r"""Reference PyTorch timing, same JSON fields as bench.py: the authors' RDN (EDSR-PyTorch ``model/rdn.py``) by
default, or any network torch_models.py builds from an sr_jax config.model (--model_json), in the mode people
train with (--mode: eager float32, or channels_last + bf16 autocast + TF32 + torch.compile).

  pip install -r requirements-bench.txt && pip install --no-deps spandrel==0.4.2
  python -m experiments.benchmarks.torch_rdn --threads=2 --batch=4 --patch=32 --infer_size=128
  python -m experiments.benchmarks.torch_rdn --mode=compiled_bf16_cl \
      --model_json='{"name": "srvgg", "scale": 4, "num_blocks": 16, "features": 64, "channels": 3,
                     "activation": "prelu"}'

bench.py --with_torch runs this with ``--serve`` in a subprocess (its own thread pool, warm for the whole run)
with the same sizes and alternates the two frameworks: each line ``train N`` / ``infer N`` on stdin times N calls
and answers one JSON line ``{"what", "seconds": [...]}``; ``quit`` ends it. Train step: Adam + L1.
Without --serve: the medians of --steps after one warm-up, one JSON line per measurement.
"""

from __future__ import annotations

import json
import resource

from absl import app, flags

from experiments.benchmarks import timing, torch_models
from sr_jax.models import registry


MODES = ("eager_fp32", "compiled_bf16_cl")

flags.DEFINE_integer("threads", 2, "torch.set_num_threads.")
flags.DEFINE_integer("batch", 4, "Train batch.")
flags.DEFINE_integer("patch", 32, "LR patch side.")
flags.DEFINE_integer("infer_size", 128, "LR side of the inference image.")
flags.DEFINE_integer("steps", 5, "Timed steps.")
flags.DEFINE_integer("scale", 2, "RDN scale.")
flags.DEFINE_integer("num_blocks", 16, "D.")
flags.DEFINE_integer("num_layers", 8, "C.")
flags.DEFINE_integer("growth", 64, "G.")
flags.DEFINE_integer("features", 64, "G0.")
flags.DEFINE_integer("channels", 3, "Colour channels.")
flags.DEFINE_string("what", "train,infer", "Measurements.")
flags.DEFINE_bool("serve", False, "Answer timing requests on stdin (bench.py --with_torch alternates with JAX).")
flags.DEFINE_string("model_json", None, "An sr_jax config.model as JSON (any architecture torch_models.py knows: "
                    "rdn, edsr, rrdbnet, srvgg, swinir, hat, rcan); overrides the RDN flags above.")
flags.DEFINE_enum("mode", "eager_fp32", MODES, "eager_fp32: float32, NCHW, eager (the reference code as written); "
                  "compiled_bf16_cl: channels_last, bf16 autocast, TF32, torch.compile (max-autotune without CUDA "
                  "graphs on a GPU, the default mode on a CPU), as traiNNer-redux and neosr train.")
FLAGS = flags.FLAGS


def _calls(torch, a, model, channels: int, scale: int):
  """{'train'|'infer': one call (synchronised on a GPU)} for --what, in --mode."""
  import contextlib
  device = "cuda" if torch.cuda.is_available() else "cpu"
  model = model.to(device)
  fast = a.mode == "compiled_bf16_cl"
  layout = torch.channels_last if fast else torch.contiguous_format
  if fast:
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    model = model.to(memory_format=torch.channels_last)
  run = torch.compile(model, mode="max-autotune-no-cudagraphs" if device == "cuda" else None) if fast else model
  autocast = (lambda: torch.autocast(device_type=device, dtype=torch.bfloat16)) if fast else contextlib.nullcontext
  sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
  calls = {}
  if "train" in a.what:
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    p, b = a.patch, a.batch
    lr = torch.rand(b, channels, p, p, generator=gen).to(device, memory_format=layout)
    hr = torch.rand(b, channels, p * scale, p * scale, generator=gen).to(device, memory_format=layout)

    def step():
      model.train()
      opt.zero_grad(set_to_none=True)
      with autocast():
        loss = torch.nn.functional.l1_loss(run(lr).float(), hr)
      loss.backward()
      opt.step()
      sync()
      return loss
    calls["train"] = step
  if "infer" in a.what:
    x = torch.rand(1, channels, a.infer_size, a.infer_size).to(device, memory_format=layout)

    def infer():
      model.eval()
      with torch.inference_mode(), autocast():
        out = run(x)
      sync()
      return out
    calls["infer"] = infer
  return calls


def _serve(calls) -> None:
  import sys
  import time
  for fn in calls.values():  # Warm: the first call of each is never timed.
    fn()
  print(json.dumps({"ready": sorted(calls)}), flush=True)
  for line in sys.stdin:
    what, _, n = line.strip().partition(" ")
    if what == "quit":
      break
    seconds = []
    for _ in range(int(n or 1)):
      t0 = time.perf_counter()
      calls[what]()
      seconds.append(time.perf_counter() - t0)
    print(json.dumps({"what": what, "seconds": seconds}), flush=True)


def main(argv):
  del argv
  a = FLAGS
  import torch  # Optional: only this reference benchmark needs PyTorch.

  torch.set_num_threads(a.threads)
  m = registry.default_config()  # Fields the JSON (or the RDN flags) leave out keep sr_jax's defaults.
  m.update(json.loads(a.model_json) if a.model_json else
           dict(name="rdn", scale=a.scale, num_blocks=a.num_blocks, num_layers=a.num_layers, growth=a.growth,
                features=a.features, channels=a.channels))
  arch, per_px, model = m.to_dict(), registry.flops_per_output_pixel(m), torch_models.build(torch, m)
  calls = _calls(torch, a, model, arch["channels"], arch["scale"])
  if a.serve:
    return _serve(calls)
  base = {"framework": "torch", "torch": torch.__version__, "threads": a.threads, "mode": a.mode,
          "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu", "model": arch}
  out = []
  if "train" in calls:
    first, median = timing.warmup_then_median(calls["train"], a.steps)
    p, s, b = a.patch, arch["scale"], a.batch
    flops = 3 * per_px * b * (p * s) ** 2
    out.append({"benchmark": "train_step", "batch": b, "lr_patch": p, "first_step_s": round(first, 3),
                "step_s_median": round(median, 4), "patches_per_s": round(b / median, 2),
                "gflop_per_step": round(flops / 1e9, 2), "gflops_per_s": round(flops / median / 1e9, 1)})
  if "infer" in calls:
    first, median = timing.warmup_then_median(calls["infer"], max(1, a.steps // 2))
    mpix = (a.infer_size * arch["scale"]) ** 2 / 1e6
    out.append({"benchmark": "inference_full", "lr_size": a.infer_size, "compile_plus_first_s": round(first, 3),
                "seconds_median": round(median, 4), "output_mpix_per_s": round(mpix / median, 4),
                "gflops_per_s_useful": round(per_px * mpix * 1e6 / median / 1e9, 1)})
  rss = {"peak_host_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
  for r in out:
    print(json.dumps({**base, **r, **rss}), flush=True)


if __name__ == "__main__":
  app.run(main)
