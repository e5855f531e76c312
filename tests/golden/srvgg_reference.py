r"""Makes tests/golden/srvgg_reference.npz: BasicSR's own SRVGGNetCompact (basicsr 1.4.2 ``archs/srvgg_arch.py``)
run on fixed weights and inputs, for the architecture and importer tests.

Run where torch is installed, with the basicsr sources (its sdist, or the BasicSR repository), from the
repository root:

  PYTHONPATH=. python tests/golden/srvgg_reference.py /tmp/bsr/basicsr

Only srvgg_arch.py is executed (its registry import stubbed). Weights come from ``state_dict(case)`` (NumPy,
seeded; PReLU slopes random too, so a slope read from the wrong tensor shows) and inputs from ``inputs()``:
the test rebuilds both, so only the outputs are stored.
"""

import os
import sys
import types

import numpy as np

CASES = {"x4_prelu": dict(upscale=4, num_conv=3, num_feat=8, act_type="prelu"),
         "x2_prelu": dict(upscale=2, num_conv=2, num_feat=8, act_type="prelu"),
         "x3_leakyrelu": dict(upscale=3, num_conv=2, num_feat=8, act_type="leakyrelu"),
         "x1_prelu": dict(upscale=1, num_conv=2, num_feat=8, act_type="prelu")}  # Same size (1x models).


def shapes(case: str) -> dict[str, tuple]:
  c = CASES[case]
  f, s = c["num_feat"], c["upscale"]
  convs = [(f, 3)] + [(f, f)] * c["num_conv"] + [(3 * s * s, f)]
  out, i = {}, 0
  for n, (o, cin) in enumerate(convs):
    out[f"body.{i}.weight"], out[f"body.{i}.bias"] = (o, cin, 3, 3), (o,)
    i += 1
    if n < len(convs) - 1:
      if c["act_type"] == "prelu":
        out[f"body.{i}.weight"] = (f,)
      i += 1
  return out


def state_dict(case: str) -> dict[str, np.ndarray]:
  rng = np.random.default_rng(5)
  out = {}
  for k, s in sorted(shapes(case).items()):
    if len(s) == 1 and not k.endswith("bias"):  # PReLU slopes.
      out[k] = rng.uniform(0.0, 0.5, s).astype(np.float32)
    else:
      out[k] = (rng.standard_normal(s) * (0.1 if k.endswith("bias") else (1.0 / np.prod(s[1:])) ** 0.5)
                ).astype(np.float32)
  return out


def inputs() -> np.ndarray:
  """NCHW float32 in [0, 1], odd sides."""
  return np.random.default_rng(3).random((2, 3, 9, 7)).astype(np.float32)


def _basicsr_srvgg(root: str):
  import torch  # noqa: F401  (the reference runs in PyTorch)
  registry = types.ModuleType("basicsr.utils.registry")
  registry.ARCH_REGISTRY = types.SimpleNamespace(register=lambda **kw: (lambda cls: cls))
  for name, mod in (("basicsr", types.ModuleType("basicsr")), ("basicsr.utils", types.ModuleType("basicsr.utils")),
                    ("basicsr.utils.registry", registry)):
    sys.modules[name] = mod
  arch = types.ModuleType("basicsr.archs.srvgg_arch")
  exec(open(os.path.join(root, "archs", "srvgg_arch.py")).read(), arch.__dict__)
  return arch.SRVGGNetCompact


def main(root: str) -> None:
  import torch
  srvgg = _basicsr_srvgg(root)
  out = {}
  for case, c in CASES.items():
    net = srvgg(num_in_ch=3, num_out_ch=3, **c).eval()
    sd = {k: torch.from_numpy(v) for k, v in state_dict(case).items()}
    assert set(sd) == set(net.state_dict()), set(sd) ^ set(net.state_dict())
    net.load_state_dict(sd)
    with torch.no_grad():
      out[case] = net(torch.from_numpy(inputs())).numpy()
  np.savez_compressed(os.path.join(os.path.dirname(os.path.abspath(__file__)), "srvgg_reference.npz"), **out)
  print({k: v.shape for k, v in out.items()})


if __name__ == "__main__":
  main(sys.argv[1])
