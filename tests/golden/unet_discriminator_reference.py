r"""Makes tests/golden/unet_discriminator_reference.npz: BasicSR's own UNetDiscriminatorSN (basicsr 1.4.2
``archs/discriminator_arch.py``, PyTorch spectral_norm) on fixed weights, power-iteration vectors and input.

  PYTHONPATH=. python tests/golden/unet_discriminator_reference.py /tmp/bsr/basicsr   # where torch is installed

Stores the logits in eval mode (stored u, v) and after one training-mode forward (one power iteration), with
the updated u of conv1; ``state_dict()`` and ``inputs()`` are rebuilt by the test.
"""

import ast
import os
import sys
import types

import numpy as np

FEATURES = 8
SN = ("conv1", "conv2", "conv3", "conv4", "conv5", "conv6", "conv7", "conv8")


def _shapes() -> dict[str, tuple]:
  f = FEATURES
  convs = {"conv0": (f, 3, 3), "conv1": (2 * f, f, 4), "conv2": (4 * f, 2 * f, 4), "conv3": (8 * f, 4 * f, 4),
           "conv4": (4 * f, 8 * f, 3), "conv5": (2 * f, 4 * f, 3), "conv6": (f, 2 * f, 3), "conv7": (f, f, 3),
           "conv8": (f, f, 3), "conv9": (1, f, 3)}
  out = {}
  for name, (o, i, k) in convs.items():
    if name in SN:
      out.update({f"{name}.weight_orig": (o, i, k, k), f"{name}.weight_u": (o,), f"{name}.weight_v": (i * k * k,)})
    else:
      out.update({f"{name}.weight": (o, i, k, k), f"{name}.bias": (o,)})
  return out


def state_dict() -> dict[str, np.ndarray]:
  rng = np.random.default_rng(3)
  out = {}
  for k, s in sorted(_shapes().items()):
    v = rng.standard_normal(s)
    if k.endswith(("_u", "_v")):
      v = v / np.linalg.norm(v)
    elif len(s) == 4:
      v = v * (1.0 / np.prod(s[1:])) ** 0.5
    else:
      v = v * 0.1
    out[k] = v.astype(np.float32)
  return out


def inputs() -> np.ndarray:
  return np.random.default_rng(5).random((2, 3, 32, 32)).astype(np.float32)


def _basicsr_unet(root: str):
  import torch  # noqa: F401
  registry = types.ModuleType("basicsr.utils.registry")
  registry.ARCH_REGISTRY = types.SimpleNamespace(register=lambda **kw: (lambda cls: cls))
  for name, mod in (("basicsr", types.ModuleType("basicsr")), ("basicsr.utils", types.ModuleType("basicsr.utils")),
                    ("basicsr.utils.registry", registry)):
    sys.modules[name] = mod
  src = open(os.path.join(root, "archs", "discriminator_arch.py")).read()
  tree = ast.parse(src)
  keep = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom)) or
          (isinstance(n, ast.ClassDef) and n.name == "UNetDiscriminatorSN")]
  namespace: dict = {}
  exec(ast.unparse(ast.Module(keep, [])), namespace)
  return namespace["UNetDiscriminatorSN"]


def main(root: str) -> None:
  import torch
  net = _basicsr_unet(root)(3, num_feat=FEATURES)
  sd = {k: torch.from_numpy(v) for k, v in state_dict().items()}
  assert set(sd) == set(net.state_dict()), set(sd) ^ set(net.state_dict())
  net.load_state_dict(sd)
  x = torch.from_numpy(inputs())
  out = {}
  with torch.no_grad():
    net.eval()
    out["eval"] = net(x).numpy()
    net.train()
    out["train"] = net(x).numpy()
    out["conv1_u_after"] = net.conv1.weight_u.numpy().copy()
  np.savez_compressed(os.path.join(os.path.dirname(os.path.abspath(__file__)), "unet_discriminator_reference.npz"),
                      **out)
  print({k: v.shape for k, v in out.items()})


if __name__ == "__main__":
  main(sys.argv[1])
