r"""Makes tests/golden/edsr_rcan_reference.npz: EDSR and RCAN as BasicSR (basicsr 1.4.2 ``archs/edsr_arch.py``,
``archs/rcan_arch.py``) and as EDSR-PyTorch (``src/model/{common,edsr,rcan}.py``, the layout of EDSR's and
RCAN's releases) compute them, on seeded random weights, for the architecture and importer tests.

Run where torch is installed, with the basicsr sources (its sdist) and EDSR-PyTorch's ``src/model`` folder, from
the repository root:

  PYTHONPATH=. python tests/golden/edsr_rcan_reference.py /tmp/bsr/basicsr /tmp/edsrpt/model

Only those files (and BasicSR's ``archs/arch_util.py``) are executed; the imports they do not need for EDSR/RCAN
(the registry, deformable convs, torchvision) are stubbed. Each case stores its layout (``CASE/__layout__``: names and
shapes; the weights are ``random_weights`` of it, seeded by ``seed(CASE)``, which the tests rebuild), the fixed
mean shifts, and the output on ``inputs()`` (``CASE/output``). BasicSR's
networks take [0, 1] pixels; EDSR-PyTorch's take [0, 255] (its ``rgb_range``), so they get the same inputs x 255
and their outputs are stored / 255.
"""

import json
import os
import sys
import types

import numpy as np

BASICSR = {  # BasicSR constructor arguments (num_in_ch = num_out_ch = 3).
    "basicsr_edsr_x2": ("EDSR", dict(num_feat=8, num_block=2, upscale=2)),
    "basicsr_edsr_x3_res0.1": ("EDSR", dict(num_feat=8, num_block=2, upscale=3, res_scale=0.1)),
    "basicsr_edsr_x4": ("EDSR", dict(num_feat=8, num_block=3, upscale=4)),
    "basicsr_rcan_x2": ("RCAN", dict(num_feat=16, num_group=2, num_block=2, squeeze_factor=4, upscale=2)),
    "basicsr_rcan_x4_res0.5": ("RCAN", dict(num_feat=16, num_group=2, num_block=3, squeeze_factor=8, upscale=4,
                                            res_scale=0.5)),
}
PAPER_SIZES = {  # Parameter counts of the papers' networks, as the reference modules build them.
    "edsr_x4": ("EDSR", dict(num_feat=256, num_block=32, upscale=4, res_scale=0.1)),
    "edsr_baseline_x2": ("EDSR", dict(num_feat=64, num_block=16, upscale=2)),
    "rcan_x4": ("RCAN", dict(num_feat=64, num_group=10, num_block=20, squeeze_factor=16, upscale=4)),
}
EDSR_PYTORCH = {  # EDSR-PyTorch ``args`` fields (n_colors 3, rgb_range 255).
    "edsrpt_edsr_x2_res0.1": ("edsr", dict(n_resblocks=2, n_feats=8, scale=[2], res_scale=0.1)),
    "edsrpt_edsr_x4": ("edsr", dict(n_resblocks=3, n_feats=8, scale=[4], res_scale=1)),
    "edsrpt_rcan_x3": ("rcan", dict(n_resgroups=2, n_resblocks=2, n_feats=16, reduction=4, scale=[3], res_scale=1)),
}


def inputs() -> np.ndarray:
  """NCHW float32 in [0, 1], odd sides."""
  return np.random.default_rng(3).random((2, 3, 11, 9)).astype(np.float32)


def random_weights(layout: list, seed: int, bias_std: float = 10.0) -> dict:
  """Seeded values for every learned tensor of ``layout`` ((name, shape) in the reference's state-dict order):
  convs ~ N(0, 1/fan_in), biases ~ N(0, 10) (the networks work on [0, 255] pixels inside, so biases of that size
  matter), channel-attention convs 50x smaller (their input is a channel's mean; the sigmoid should not
  saturate); ``bias_std`` for networks on [0, 1] pixels. NumPy only, so the tests rebuild them from the stored
  layout."""
  rng = np.random.default_rng(seed)
  out = {}
  for k, shape in layout:
    attention = "attention" in k or "conv_du" in k
    if k.endswith("bias"):
      value = rng.standard_normal(shape) * (0.2 if attention else bias_std)
    else:
      value = rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:])) * (0.02 if attention else 1.0)
    out[k] = value.astype(np.float32)
  return out


def _is_mean_shift(name: str) -> bool:
  return name.startswith(("sub_mean.", "add_mean."))


def fill(net, seed: int, store: dict, case: str, fixed=_is_mean_shift, bias_std: float = 10.0) -> None:
  """Loads ``random_weights`` into ``net`` and stores the case's layout and the tensors ``fixed`` names (what
  the reference computes itself: mean shifts, index buffers, masks) under ``CASE/``."""
  import torch
  sd = net.state_dict()
  layout = [(k, tuple(v.shape)) for k, v in sd.items() if not fixed(k)]
  weights = random_weights(layout, seed, bias_std)
  net.load_state_dict({**sd, **{k: torch.from_numpy(v) for k, v in weights.items()}})
  store[f"{case}/__layout__"] = np.asarray(json.dumps(layout))
  store.update({f"{case}/{k}": v.numpy() for k, v in sd.items() if fixed(k)})


def stored_state_dict(golden, case: str, seed: int, fixed=_is_mean_shift, bias_std: float = 10.0) -> dict:
  """A case's full state dict from the golden file (the tests' side of ``fill``)."""
  layout = [(k, tuple(s)) for k, s in json.loads(str(golden[f"{case}/__layout__"]))]
  kept = {k.split("/", 1)[1]: golden[k] for k in golden.files
          if k.startswith(f"{case}/") and not k.endswith(("/__layout__", "/output")) and fixed(k.split("/", 1)[1])}
  return {**random_weights(layout, seed, bias_std), **kept}


def state_dict(golden, case: str, seed: int) -> dict:
  return stored_state_dict(golden, case, seed)


def seed(case: str) -> int:
  return 10 + sorted(BASICSR).index(case) if case in BASICSR else 20 + sorted(EDSR_PYTORCH).index(case)


def _stub(name: str, **attrs) -> types.ModuleType:
  mod = types.ModuleType(name)
  mod.__dict__.update(attrs)
  sys.modules[name] = mod
  return mod


def _exec(path: str, name: str) -> types.ModuleType:
  mod = _stub(name)
  exec(compile(open(path).read(), path, "exec"), mod.__dict__)
  return mod


def _basicsr(root: str) -> dict:
  _stub("basicsr")
  _stub("basicsr.archs")
  _stub("basicsr.utils", get_root_logger=lambda: None)
  _stub("basicsr.utils.registry", ARCH_REGISTRY=types.SimpleNamespace(register=lambda **kw: (lambda cls: cls)))
  _stub("basicsr.ops.dcn", ModulatedDeformConvPack=object, modulated_deform_conv=None)  # Not used by EDSR/RCAN.
  _stub("torchvision")  # arch_util imports it for the deformable conv's version check only.
  _exec(os.path.join(root, "archs", "arch_util.py"), "basicsr.archs.arch_util")
  return {"EDSR": _exec(os.path.join(root, "archs", "edsr_arch.py"), "basicsr.archs.edsr_arch").EDSR,
          "RCAN": _exec(os.path.join(root, "archs", "rcan_arch.py"), "basicsr.archs.rcan_arch").RCAN}


def _edsr_pytorch(model_dir: str) -> dict:
  pkg = _stub("model")
  pkg.common = _exec(os.path.join(model_dir, "common.py"), "model.common")
  return {n: _exec(os.path.join(model_dir, f"{n}.py"), f"model.{n}").make_model for n in ("edsr", "rcan")}


def main(basicsr_root: str, edsr_pytorch_model: str) -> None:
  import torch
  out, x = {}, torch.from_numpy(inputs())
  classes = _basicsr(basicsr_root)
  for case, (cls, kw) in sorted(BASICSR.items()):
    net = classes[cls](num_in_ch=3, num_out_ch=3, **kw).eval()
    fill(net, seed(case), out, case)
    with torch.no_grad():
      out[f"{case}/output"] = net(x).numpy()
  for name, (cls, kw) in PAPER_SIZES.items():
    out[f"params/{name}"] = np.asarray(sum(p.numel() for p in classes[cls](num_in_ch=3, num_out_ch=3, **kw)
                                           .parameters()))
  makers = _edsr_pytorch(edsr_pytorch_model)
  for case, (name, kw) in sorted(EDSR_PYTORCH.items()):
    net = makers[name](types.SimpleNamespace(n_colors=3, rgb_range=255, **kw)).eval()
    fill(net, seed(case), out, case)
    with torch.no_grad():
      out[f"{case}/output"] = (net(x * 255) / 255).numpy()
  np.savez_compressed(os.path.join(os.path.dirname(os.path.abspath(__file__)), "edsr_rcan_reference.npz"), **out)
  print({k: v.shape for k, v in out.items() if k.endswith("output")}, {k: int(v) for k, v in out.items()
                                                                        if k.startswith("params/")})
  g = np.load(os.path.join(os.path.dirname(os.path.abspath(__file__)), "edsr_rcan_reference.npz"))
  for case in BASICSR | EDSR_PYTORCH:  # The tests' rebuild gives what the reference ran.
    assert set(state_dict(g, case, seed(case))) >= {k for k, _ in json.loads(str(g[f"{case}/__layout__"]))}


if __name__ == "__main__":
  main(sys.argv[1], sys.argv[2])
