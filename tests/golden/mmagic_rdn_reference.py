r"""Makes tests/golden/mmagic_rdn_reference.npz: mmagic's own RDNNet (mmagic 1.2.0
``mmagic/models/editors/rdn/rdn_net.py``) run on seeded random weights, for the mmagic importer test.

Run where torch is installed, with the mmagic wheel unpacked (``pip download --no-deps mmagic==1.2.0``, then
``python -m zipfile -e mmagic-1.2.0-py2.py3-none-any.whl /tmp/mmagic/x``), from the repository root:

  python tests/golden/mmagic_rdn_reference.py /tmp/mmagic/x/mmagic/models/editors/rdn/rdn_net.py

Only rdn_net.py runs: mmengine's BaseModule is stubbed as torch's nn.Module and mmagic's registry as a no-op.
The file stores, per case, the state dict as mmagic checkpoints hold it (``generator.`` names, OIHW), the NCHW
input in [0, 1] (mmagic's DataPreprocessor divides by 255) and RDNNet's output.
"""

import sys
import types

import numpy as np

CASES = {"x2": 2, "x3": 3, "x4": 4}


def _rdnnet(path: str):
  import torch
  from torch import nn
  for name in ("mmengine", "mmengine.model", "mmagic", "mmagic.registry"):
    sys.modules[name] = types.ModuleType(name)
  sys.modules["mmengine.model"].BaseModule = nn.Module
  sys.modules["mmagic.registry"].MODELS = types.SimpleNamespace(register_module=lambda: (lambda cls: cls))
  scope = {"__name__": "rdn_net"}
  exec(compile(open(path).read(), path, "exec"), scope)
  return scope["RDNNet"], torch


def main(path: str, out: str = "tests/golden/mmagic_rdn_reference.npz") -> None:
  RDNNet, torch = _rdnnet(path)
  rng = np.random.default_rng(5)
  arrays = {}
  for case, scale in CASES.items():
    torch.manual_seed(0)
    net = RDNNet(3, 3, mid_channels=8, num_blocks=2, upscale_factor=scale, num_layers=3, channel_growth=8).eval()
    sd = {k: torch.from_numpy((rng.standard_normal(v.shape) * (0.05 if k.endswith("bias") else
                                                                  (1.0 / np.prod(v.shape[1:])) ** 0.5))
                              .astype(np.float32)) for k, v in net.state_dict().items()}
    net.load_state_dict(sd)
    x = rng.random((1, 3, 7, 9)).astype(np.float32)
    with torch.no_grad():
      y = net(torch.from_numpy(x)).numpy()
    arrays.update({f"{case}/generator.{k}": v.numpy() for k, v in sd.items()})
    arrays[f"{case}/input"], arrays[f"{case}/output"] = x, y
  np.savez_compressed(out, **arrays)
  print(f"wrote {out}: {len(arrays)} arrays, torch {torch.__version__}")


if __name__ == "__main__":
  main(*sys.argv[1:])
