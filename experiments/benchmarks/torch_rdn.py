r"""Reference PyTorch RDN timing (the authors' EDSR-PyTorch ``model/rdn.py``), same JSON fields as bench.py.

  pip install torch==2.13.0   # CPU build
  python -m experiments.benchmarks.torch_rdn --threads=2 --batch=4 --patch=32 --infer_size=128

bench.py --with_torch runs this with ``--serve`` in a subprocess (its own thread pool, warm for the whole run)
with the same sizes and alternates the two frameworks: each line ``train N`` / ``infer N`` on stdin times N calls
and answers one JSON line ``{"what", "seconds": [...]}``; ``quit`` ends it. Train step: Adam + L1.
Without --serve: the medians of --steps after one warm-up, one JSON line per measurement.
"""

from __future__ import annotations

import json
import resource

from absl import app, flags

from experiments.benchmarks import timing
from sr_jax.models import rdn


def build(torch, nn, *, scale, num_blocks, num_layers, growth, features, channels):
  class RDBConv(nn.Module):
    def __init__(self, cin, g):
      super().__init__()
      self.conv = nn.Sequential(nn.Conv2d(cin, g, 3, padding=1), nn.ReLU())

    def forward(self, x):
      return torch.cat((x, self.conv(x)), 1)

  class RDB(nn.Module):
    def __init__(self, g0, g, c):
      super().__init__()
      self.convs = nn.Sequential(*[RDBConv(g0 + i * g, g) for i in range(c)])
      self.lff = nn.Conv2d(g0 + c * g, g0, 1)

    def forward(self, x):
      return self.lff(self.convs(x)) + x

  class RDN(nn.Module):
    def __init__(self):
      super().__init__()
      g0, g, d = features, growth, num_blocks
      self.sfe1 = nn.Conv2d(channels, g0, 3, padding=1)
      self.sfe2 = nn.Conv2d(g0, g0, 3, padding=1)
      self.rdbs = nn.ModuleList([RDB(g0, g, num_layers) for _ in range(d)])
      self.gff = nn.Sequential(nn.Conv2d(d * g0, g0, 1), nn.Conv2d(g0, g0, 3, padding=1))
      if scale in (2, 3):
        up = [nn.Conv2d(g0, g * scale * scale, 3, padding=1), nn.PixelShuffle(scale)]
      else:
        up = [nn.Conv2d(g0, g * 4, 3, padding=1), nn.PixelShuffle(2), nn.Conv2d(g, g * 4, 3, padding=1),
              nn.PixelShuffle(2)]
      self.up = nn.Sequential(*up, nn.Conv2d(g, channels, 3, padding=1))

    def forward(self, x):
      f1 = self.sfe1(x)
      h = self.sfe2(f1)
      outs = []
      for rdb in self.rdbs:
        h = rdb(h)
        outs.append(h)
      return self.up(self.gff(torch.cat(outs, 1)) + f1)

  return RDN()


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
FLAGS = flags.FLAGS


def _calls(torch, a, model):
  """{'train'|'infer': (one call, FLOPs per call or output megapixels)} for --what."""
  calls = {}
  if "train" in a.what:
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    p, s, b = a.patch, a.scale, a.batch
    lr = torch.rand(b, a.channels, p, p, generator=gen)
    hr = torch.rand(b, a.channels, p * s, p * s, generator=gen)

    def step():
      model.train()
      opt.zero_grad(set_to_none=True)
      loss = torch.nn.functional.l1_loss(model(lr), hr)
      loss.backward()
      opt.step()
      return loss
    calls["train"] = step
  if "infer" in a.what:
    x = torch.rand(1, a.channels, a.infer_size, a.infer_size)

    def infer():
      model.eval()
      with torch.inference_mode():
        return model(x)
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
  from torch import nn

  torch.set_num_threads(a.threads)
  arch = dict(scale=a.scale, num_blocks=a.num_blocks, num_layers=a.num_layers, growth=a.growth,
              features=a.features, channels=a.channels)
  per_px = rdn.flops_per_output_pixel(**arch)
  model = build(torch, nn, **arch)
  calls = _calls(torch, a, model)
  if a.serve:
    return _serve(calls)
  base = {"framework": "torch", "torch": torch.__version__, "threads": a.threads, "device": "cpu",
          "model": {**arch, "dtype": "float32"}}
  out = []
  if "train" in calls:
    first, median = timing.warmup_then_median(calls["train"], a.steps)
    p, s, b = a.patch, a.scale, a.batch
    flops = 3 * per_px * b * (p * s) ** 2
    out.append({"benchmark": "train_step", "batch": b, "lr_patch": p, "first_step_s": round(first, 3),
                "step_s_median": round(median, 4), "patches_per_s": round(b / median, 2),
                "gflop_per_step": round(flops / 1e9, 2), "gflops_per_s": round(flops / median / 1e9, 1)})
  if "infer" in calls:
    first, median = timing.warmup_then_median(calls["infer"], max(1, a.steps // 2))
    mpix = (a.infer_size * a.scale) ** 2 / 1e6
    out.append({"benchmark": "inference_full", "lr_size": a.infer_size, "compile_plus_first_s": round(first, 3),
                "seconds_median": round(median, 4), "output_mpix_per_s": round(mpix / median, 4),
                "gflops_per_s_useful": round(per_px * mpix * 1e6 / median / 1e9, 1)})
  rss = {"peak_host_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
  for r in out:
    print(json.dumps({**base, **r, **rss}), flush=True)


if __name__ == "__main__":
  app.run(main)
