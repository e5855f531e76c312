r"""Makes tests/golden/swinir_reference.npz: BasicSR's own SwinIR (basicsr 1.4.2 ``archs/swinir_arch.py``, whose
names the SwinIR repository's releases use too) on seeded random weights, for the architecture and importer
tests: the classical (pixelshuffle), lightweight (pixelshuffledirect) and real-world (nearest+conv, 3conv)
variants at small sizes, and one input that is not a window multiple, padded as BasicSR's and SwinIR's testing
pad it (reflect, bottom/right; the output cropped).

  PYTHONPATH=. python tests/golden/swinir_reference.py /tmp/bsr/basicsr

Each case stores its layout (``CASE/__layout__``, as tests/golden/edsr_rcan_reference.py: the learned tensors
are ``random_weights`` of it, seeded by ``seed(CASE)``, biases ~ N(0, 0.1)), the buffers the reference keeps in
its state dict (``relative_position_index``, ``attn_mask``: what a release holds), and the output
(``CASE/output``).
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import edsr_rcan_reference as common  # noqa: E402  (the stubs and the seeded weights)

CASES = {  # BasicSR SwinIR arguments (in_chans 3, img_range 1), and the input's (H, W).
    "classical_x2": (dict(upscale=2, img_size=8, window_size=4, embed_dim=16, depths=(2, 2), num_heads=(2, 2),
                          mlp_ratio=2.0, upsampler="pixelshuffle", resi_connection="1conv"), (12, 8)),
    "lightweight_x3": (dict(upscale=3, img_size=8, window_size=4, embed_dim=12, depths=(2,), num_heads=(3,),
                            mlp_ratio=2.0, upsampler="pixelshuffledirect", resi_connection="1conv"), (8, 12)),
    "realworld_x4_3conv": (dict(upscale=4, img_size=8, window_size=4, embed_dim=16, depths=(2, 2), num_heads=(2, 2),
                                mlp_ratio=2.0, upsampler="nearest+conv", resi_connection="3conv"), (8, 8)),
    "classical_x4_padded": (dict(upscale=4, img_size=8, window_size=4, embed_dim=16, depths=(2,), num_heads=(4,),
                                 mlp_ratio=1.5, upsampler="pixelshuffle", resi_connection="1conv"), (11, 7)),
}
PAPER_SIZES = {  # Parameter counts of the papers' x4 networks, as the reference builds them.
    "classical_x4": dict(upscale=4, img_size=64, window_size=8, embed_dim=180, depths=(6,) * 6, num_heads=(6,) * 6,
                         mlp_ratio=2.0, upsampler="pixelshuffle", resi_connection="1conv"),
    "lightweight_x4": dict(upscale=4, img_size=64, window_size=8, embed_dim=60, depths=(6,) * 4, num_heads=(6,) * 4,
                           mlp_ratio=2.0, upsampler="pixelshuffledirect", resi_connection="1conv"),
}
BUFFERS = ("relative_position_index", "attn_mask")
BIAS_STD = 0.1  # SwinIR works on [0, 1] pixels; larger biases would saturate the softmax.


def inputs(case: str) -> np.ndarray:
  """NCHW float32 in [0, 1]."""
  return np.random.default_rng(3).random((2, 3) + CASES[case][1]).astype(np.float32)


def seed(case: str) -> int:
  return 30 + sorted(CASES).index(case)


def state_dict(golden, case: str) -> dict:
  """A case's full state dict (learned tensors and buffers) from the golden file."""
  return common.stored_state_dict(golden, case, seed(case), lambda k: k.endswith(BUFFERS), BIAS_STD)


def _swinir(root: str):
  common._basicsr(root)  # arch_util and the stubs.
  return common._exec(os.path.join(root, "archs", "swinir_arch.py"), "basicsr.archs.swinir_arch").SwinIR


def main(root: str) -> None:
  import torch
  import torch.nn.functional as F
  swinir, out = _swinir(root), {}
  for case, (kw, _) in sorted(CASES.items()):
    net = swinir(in_chans=3, img_range=1.0, **kw).eval()
    common.fill(net, seed(case), out, case, lambda k: k.endswith(BUFFERS), BIAS_STD)
    x = torch.from_numpy(inputs(case))
    h, w = x.shape[2:]
    ws = kw["window_size"]
    with torch.no_grad():
      y = net(F.pad(x, (0, -w % ws, 0, -h % ws), "reflect"))
    out[f"{case}/output"] = y[:, :, :h * kw["upscale"], :w * kw["upscale"]].numpy()
  for name, kw in PAPER_SIZES.items():
    out[f"params/{name}"] = np.asarray(sum(p.numel() for p in swinir(in_chans=3, **kw).parameters()))
  np.savez_compressed(os.path.join(os.path.dirname(os.path.abspath(__file__)), "swinir_reference.npz"), **out)
  print({k: v.shape for k, v in out.items() if k.endswith("output")},
        {k: int(v) for k, v in out.items() if k.startswith("params/")})


if __name__ == "__main__":
  main(sys.argv[1])
