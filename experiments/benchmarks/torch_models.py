"""The PyTorch networks the side-by-side benchmarks time, built from an sr_jax ``config.model`` (same network,
same sizes), from the reference code people train with:

- rdn: the RDN authors' EDSR-PyTorch ``model/rdn.py``, typed here (``rdn``);
- rrdbnet, srvgg, swinir, hat, rcan: spandrel's modules (``spandrel==0.4.2``, requirements-bench.txt's command; what
  traiNNer-redux, chaiNNer and ComfyUI load models with). Its files are imported as they are, but not its
  ``__init__`` (which imports every architecture, two of them needing torchvision);
- edsr: spandrel has none: BasicSR's ``edsr_arch.py`` (1.4.2), typed here (EDSR-PyTorch's network with BasicSR's
  names).

``build(torch, model_cfg)`` returns the module; ``check_same_size`` compares its parameter count with sr_jax's.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

SPANDREL = {"rrdbnet": ("ESRGAN", "RRDB", "RRDBNet"), "srvgg": ("Compact", "SRVGG", "SRVGGNetCompact"),
            "swinir": ("SwinIR", "SwinIR", "SwinIR"), "hat": ("HAT", "HAT", "HAT"),
            "rcan": ("RCAN", "rcan_arch", "RCAN")}
ARCHS = ("rdn", "edsr", *SPANDREL)


def _spandrel_class(arch: str):
  """spandrel's class for ``arch``, its package's ``__init__`` files never run."""
  if "spandrel" in sys.modules:  # Our stand-in from an earlier call.
    root = sys.modules["spandrel"].__path__[0]
  else:
    spec = importlib.util.find_spec("spandrel")
    if spec is None:
      raise ImportError("the side-by-side benchmark needs spandrel: pip install -r requirements-bench.txt && "
                        "pip install --no-deps spandrel==0.4.2")
    root = spec.submodule_search_locations[0]
  folder, module, cls = SPANDREL[arch]
  for name, path in (("spandrel", root), ("spandrel.architectures", f"{root}/architectures"),
                     (f"spandrel.architectures.{folder}", f"{root}/architectures/{folder}")):
    if name not in sys.modules:
      pkg = types.ModuleType(name)
      pkg.__path__ = [path]
      sys.modules[name] = pkg
  if not hasattr(sys.modules["spandrel"], "util"):
    sys.modules["spandrel"].util = importlib.import_module("spandrel.util")
  return getattr(importlib.import_module(f"spandrel.architectures.{folder}.__arch.{module}"), cls)


def rdn(torch, nn, *, scale, num_blocks, num_layers, growth, features, channels):
  """The RDN authors' EDSR-PyTorch model/rdn.py, typed with its module names."""
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


def _edsr(torch, nn, m):
  """BasicSR 1.4.2 archs/edsr_arch.py (MeanShift by the DIV2K mean, img_range 255, residual blocks without BN)."""

  class ResidualBlockNoBN(nn.Module):
    def __init__(self):
      super().__init__()
      self.conv1 = nn.Conv2d(m.features, m.features, 3, 1, 1)
      self.conv2 = nn.Conv2d(m.features, m.features, 3, 1, 1)
      self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
      return x + self.conv2(self.relu(self.conv1(x))) * m.res_scale

  class EDSR(nn.Module):
    def __init__(self):
      super().__init__()
      self.img_range = 255.0
      self.register_buffer("mean", torch.tensor((0.4488, 0.4371, 0.4040)).view(1, 3, 1, 1))
      self.conv_first = nn.Conv2d(m.channels, m.features, 3, 1, 1)
      self.body = nn.Sequential(*[ResidualBlockNoBN() for _ in range(m.num_blocks)])
      self.conv_after_body = nn.Conv2d(m.features, m.features, 3, 1, 1)
      up = []
      if m.scale in (2, 4):
        for _ in range(m.scale // 2):
          up += [nn.Conv2d(m.features, 4 * m.features, 3, 1, 1), nn.PixelShuffle(2)]
      else:
        up += [nn.Conv2d(m.features, 9 * m.features, 3, 1, 1), nn.PixelShuffle(3)]
      self.upsample = nn.Sequential(*up)
      self.conv_last = nn.Conv2d(m.features, m.channels, 3, 1, 1)

    def forward(self, x):
      x = (x - self.mean) * self.img_range
      x = self.conv_first(x)
      res = self.conv_after_body(self.body(x)) + x
      return self.conv_last(self.upsample(res)) / self.img_range + self.mean

  return EDSR()


def build(torch, m):
  """The reference PyTorch module of sr_jax model config ``m`` (float32, NCHW, random weights)."""
  from torch import nn
  if m.name == "rdn":
    return rdn(torch, nn, scale=m.scale, num_blocks=m.num_blocks, num_layers=m.num_layers, growth=m.growth,
               features=m.features, channels=m.channels)
  if m.name == "edsr":
    return _edsr(torch, nn, m)
  if m.name not in SPANDREL:
    raise ValueError(f"no PyTorch reference for model.name={m.name!r}; one of {', '.join(ARCHS)}")
  cls = _spandrel_class(m.name)
  if m.name == "rrdbnet":
    if m.growth != 32:
      raise ValueError(f"spandrel's RRDBNet grows by 32 channels; model.growth={m.growth}")
    return cls(in_nc=m.channels, out_nc=m.channels, num_filters=m.features, num_blocks=m.num_blocks, scale=m.scale)
  if m.name == "srvgg":
    return cls(num_in_ch=m.channels, num_out_ch=m.channels, num_feat=m.features, num_conv=m.num_blocks,
               upscale=m.scale, act_type=m.activation)
  if m.name == "rcan":
    net = cls(scale=m.scale, n_resgroups=m.num_groups, n_resblocks=m.num_blocks, n_feats=m.features,
              n_colors=m.channels, reduction=m.squeeze, res_scale=m.res_scale)
    for shift in (net.sub_mean, net.add_mean):  # Fixed in the authors' code (requires_grad False); not in spandrel.
      shift.requires_grad_(False)
    return net
  common = dict(in_chans=m.channels, embed_dim=m.features, depths=[m.num_layers] * m.num_blocks,
                num_heads=[m.num_heads] * m.num_blocks, window_size=m.window_size, mlp_ratio=m.mlp_ratio,
                upscale=m.scale, img_range=1.0, upsampler=m.upsampler, resi_connection=m.resi_connection,
                drop_path_rate=m.drop_path_rate, img_size=64)
  if m.name == "hat":
    common.update(compress_ratio=m.compress_ratio, squeeze_factor=m.squeeze, overlap_ratio=m.overlap_ratio)
  return cls(**common)


def param_count(module) -> int:
  """Trained parameters (RCAN's fixed mean shifts are convolutions that do not train)."""
  return sum(p.numel() for p in module.parameters() if p.requires_grad)
