r"""Makes tests/golden/hat_reference.npz: HAT as the official ``hat/archs/hat_arch.py`` (XPixelGroup/HAT) computes
it, on seeded random weights, for the architecture and importer tests. The code run is spandrel 0.4.2's copy of
that file (``spandrel/architectures/HAT/__arch/HAT.py``: the official classes and names, with the reflect padding
to window multiples that HAT's own ``hat_model.py`` does moved into ``forward``), since the official repository
is not a package:

  pip download --no-deps spandrel==0.4.2 && unzip spandrel-0.4.2-py3-none-any.whl -d /tmp/spd   # needs einops
  PYTHONPATH=. python tests/golden/hat_reference.py /tmp/spd

Only that file and the helpers it imports (spandrel/util, its timm copy, the padding helper) are executed; the
package's ``__init__`` (every other architecture) is not. Each case stores its layout and buffers as
tests/golden/swinir_reference.py does (learned tensors: ``random_weights``, seeded by ``seed(CASE)``, biases
~ N(0, 0.1)) and the output on ``inputs(CASE)``.
"""

import os
import sys
import types

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import edsr_rcan_reference as common  # noqa: E402  (the seeded weights)

CASES = {  # HAT arguments (in_chans 3, img_range 1, upsampler pixelshuffle), and the input's (H, W).
    "hat_x2": (dict(upscale=2, img_size=8, window_size=4, embed_dim=16, depths=(2,), num_heads=(2,),
                    compress_ratio=2, squeeze_factor=4, overlap_ratio=0.5, mlp_ratio=2.0, resi_connection="1conv"),
               (8, 12)),
    "hat_x4_two_groups": (dict(upscale=4, img_size=8, window_size=4, embed_dim=16, depths=(2, 2), num_heads=(4, 4),
                               compress_ratio=4, squeeze_factor=8, overlap_ratio=0.5, mlp_ratio=1.5,
                               resi_connection="1conv"), (8, 8)),
    "hat_x3_identity_padded": (dict(upscale=3, img_size=8, window_size=4, embed_dim=12, depths=(2,), num_heads=(3,),
                                    compress_ratio=3, squeeze_factor=4, overlap_ratio=1.0, mlp_ratio=2.0,
                                    resi_connection="identity"), (7, 10)),
}
PAPER_SIZES = {  # Parameter counts of the papers' x4 networks.
    "hat_x4": dict(upscale=4, img_size=64, window_size=16, embed_dim=180, depths=(6,) * 6, num_heads=(6,) * 6,
                   compress_ratio=3, squeeze_factor=30, overlap_ratio=0.5, mlp_ratio=2.0),
    "hat_s_x4": dict(upscale=4, img_size=64, window_size=16, embed_dim=144, depths=(6,) * 6, num_heads=(6,) * 6,
                     compress_ratio=24, squeeze_factor=24, overlap_ratio=0.5, mlp_ratio=2.0),
}
BUFFERS = ("relative_position_index_SA", "relative_position_index_OCA", "attn_mask", "relative_position_index")
BIAS_STD = 0.1


def inputs(case: str) -> np.ndarray:
  return np.random.default_rng(3).random((2, 3) + CASES[case][1]).astype(np.float32)


def seed(case: str) -> int:
  return 40 + sorted(CASES).index(case)


def state_dict(golden, case: str) -> dict:
  """A case's full state dict (learned tensors and buffers) from the golden file."""
  return common.stored_state_dict(golden, case, seed(case), lambda k: k.endswith(BUFFERS), BIAS_STD)


def _hat(root: str):
  """spandrel's HAT module, without the package's __init__."""
  def package(name: str, path: str) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__path__ = [path]
    sys.modules[name] = mod
    return mod
  base = os.path.join(root, "spandrel")
  package("spandrel", base)
  package("spandrel.architectures", os.path.join(base, "architectures"))
  package("spandrel.architectures.HAT", os.path.join(base, "architectures", "HAT"))
  import importlib
  return importlib.import_module("spandrel.architectures.HAT.__arch.HAT").HAT


def main(root: str) -> None:
  import torch
  hat, out = _hat(root), {}
  for case, (kw, _) in sorted(CASES.items()):
    net = hat(in_chans=3, img_range=1.0, upsampler="pixelshuffle", **kw).eval()
    common.fill(net, seed(case), out, case, lambda k: k.endswith(BUFFERS), BIAS_STD)
    with torch.no_grad():
      out[f"{case}/output"] = net(torch.from_numpy(inputs(case))).numpy()
  for name, kw in PAPER_SIZES.items():
    out[f"params/{name}"] = np.asarray(sum(p.numel() for p in hat(in_chans=3, upsampler="pixelshuffle", **kw)
                                           .parameters()))
  np.savez_compressed(os.path.join(os.path.dirname(os.path.abspath(__file__)), "hat_reference.npz"), **out)
  print({k: v.shape for k, v in out.items() if k.endswith("output")},
        {k: int(v) for k, v in out.items() if k.startswith("params/")}, sorted({k.split("/")[1] for k in out
                                                                                 if "__layout__" not in k})[:8])


if __name__ == "__main__":
  main(sys.argv[1])
