r"""Makes tests/golden/rrdbnet_reference.npz: BasicSR's own RRDBNet (basicsr 1.4.2 ``archs/rrdbnet_arch.py``)
run on fixed weights and inputs, for the architecture and importer tests.

Run where torch is installed, with the basicsr sdist unpacked (``pip download --no-deps --no-binary :all:
basicsr==1.4.2``), from the repository root:

  PYTHONPATH=. python tests/golden/rrdbnet_reference.py /tmp/bsr/basicsr

Only rrdbnet_arch.py and three helpers of arch_util.py (make_layer, default_init_weights, pixel_unshuffle) are
executed; the rest of basicsr (CUDA ops, registries) is stubbed. Weights come from ``state_dict(case)`` (NumPy,
seeded) and inputs from ``inputs(case)``: the test rebuilds both, so only the outputs are stored.
"""

import ast
import os
import sys
import types

import numpy as np

CASES = {"x4": dict(scale=4, num_block=2, num_feat=16, num_grow_ch=8),
         "x2": dict(scale=2, num_block=2, num_feat=16, num_grow_ch=8),
         "x1": dict(scale=1, num_block=2, num_feat=16, num_grow_ch=8)}  # Same size: unshuffled by 4.


def shapes(case: str) -> dict[str, tuple]:
  """BasicSR's RRDBNet state-dict names and shapes (OIHW) for a case."""
  c = CASES[case]
  f, g, cin = c["num_feat"], c["num_grow_ch"], 3 * (4 // c["scale"]) ** 2
  out = {"conv_first": (f, cin)}
  for i in range(c["num_block"]):
    for k in (1, 2, 3):
      for j in range(1, 6):
        out[f"body.{i}.rdb{k}.conv{j}"] = (f if j == 5 else g, f + (j - 1) * g)
  out.update(conv_body=(f, f), conv_up1=(f, f), conv_up2=(f, f), conv_hr=(f, f), conv_last=(3, f))
  return {f"{k}.weight": (o, i, 3, 3) for k, (o, i) in out.items()} | {f"{k}.bias": (o,) for k, (o, i) in out.items()}


def state_dict(case: str) -> dict[str, np.ndarray]:
  rng = np.random.default_rng(7)
  return {k: (rng.standard_normal(s) * (0.1 if k.endswith("bias") else (1.0 / np.prod(s[1:])) ** 0.5))
          .astype(np.float32) for k, s in sorted(shapes(case).items())}


def inputs(case: str) -> np.ndarray:
  """NCHW float32 in [0, 1], sides BasicSR's pixel_unshuffle divides (even for x2, multiples of 4 for x1)."""
  return np.random.default_rng(11).random((2, 3, 12, 8 if case == "x1" else 10)).astype(np.float32)


def _basicsr_rrdbnet(root: str):
  import torch  # noqa: F401  (the reference runs in PyTorch)
  registry = types.ModuleType("basicsr.utils.registry")
  registry.ARCH_REGISTRY = types.SimpleNamespace(register=lambda: (lambda cls: cls))
  util = types.ModuleType("basicsr.archs.arch_util")
  src = open(os.path.join(root, "archs", "arch_util.py")).read()
  keep = [n for n in ast.parse(src).body if isinstance(n, ast.FunctionDef)
          and n.name in ("make_layer", "default_init_weights", "pixel_unshuffle")]
  exec("import torch\nfrom torch import nn\nfrom torch.nn import init\n"
       "from torch.nn.modules.batchnorm import _BatchNorm\n" + ast.unparse(ast.Module(keep, [])), util.__dict__)
  for name, mod in (("basicsr", types.ModuleType("basicsr")), ("basicsr.utils", types.ModuleType("basicsr.utils")),
                    ("basicsr.utils.registry", registry), ("basicsr.archs", types.ModuleType("basicsr.archs")),
                    ("basicsr.archs.arch_util", util)):
    sys.modules[name] = mod
  arch = types.ModuleType("basicsr.archs.rrdbnet_arch")
  code = open(os.path.join(root, "archs", "rrdbnet_arch.py")).read()
  code = code.replace("from .arch_util", "from basicsr.archs.arch_util")
  exec(code, arch.__dict__)
  return arch.RRDBNet


def main(root: str) -> None:
  import torch
  rrdbnet = _basicsr_rrdbnet(root)
  out = {}
  for case, c in CASES.items():
    net = rrdbnet(num_in_ch=3, num_out_ch=3, **c).eval()
    sd = {k: torch.from_numpy(v) for k, v in state_dict(case).items()}
    assert set(sd) == set(net.state_dict()), set(sd) ^ set(net.state_dict())
    net.load_state_dict(sd)
    with torch.no_grad():
      out[case] = net(torch.from_numpy(inputs(case))).numpy()
  np.savez_compressed(os.path.join(os.path.dirname(os.path.abspath(__file__)), "rrdbnet_reference.npz"), **out)
  print({k: v.shape for k, v in out.items()})


if __name__ == "__main__":
  main(sys.argv[1])
