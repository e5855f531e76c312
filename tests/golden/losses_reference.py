r"""Makes tests/golden/losses_reference.npz with BasicSR 1.4.2's own code for the SSIM loss, LDL and the GAN
objectives, in torch (float64), on real patches.

Run in an environment with torch, opencv-python-headless (BasicSR's SSIM takes its window from
cv2.getGaussianKernel), pytorch-msssim 1.0.0 (MS-SSIM's reference) and the basicsr 1.4.2 sdist unpacked, from the
repository root:

  BASICSR_DIR=/tmp/bsr/basicsr-1.4.2/basicsr SR_DATA_DIR=../shared/data PYTHONPATH=. \
      python tests/golden/losses_reference.py

Executed from BasicSR (the definitions only, taken out of the files with ast; registries and the rest of the
package are not imported): ``metrics/psnr_ssim.py`` ``_ssim_pth`` (the SSIM loss is 1 - its batch mean, on
pixels x 255 as ``calculate_ssim_pt`` feeds it), ``losses/loss_util.py`` ``get_local_weights`` /
``get_refined_artifact_map`` (LDL: ``realesrgan_model.py`` takes L1(map * SR, map * HR), BasicSR's L1Loss with
weight 1 and mean reduction, i.e. ``F.l1_loss``), ``losses/gan_loss.py`` ``GANLoss`` ('vanilla', 'lsgan',
'hinge'; generator ``cri_gan(fake, True)``, discriminator ``cri_gan(real, True, is_disc=True) +
cri_gan(fake, False, is_disc=True)``) and ESRGAN's relativistic average built on GANLoss('vanilla') as
``esrgan_model.py`` does; and ``pytorch_msssim.ms_ssim(data_range=1)`` for the MS-SSIM loss (with its Gaussian
window given in float64 through its ``win`` argument: built in float32, as by default, it alone moves the loss by
3e-6 and the gradient by 6e-5 of its largest value; in float64 ours and it agree to 6e-13) (1 - its batch mean,
on two 171x166 crops: odd sides, so its zero-padded pooling is exercised; the gradient stored every 5th pixel).
Stored: values (float64) and gradients (with respect to SR, or to the logits; float32).
"""

import ast
import os

import numpy as np
from PIL import Image

from sr_jax.image import imresize

PATCH = 32
CROPS = (("Set5/butterfly.png", 60, 80), ("Set14/baboon.png", 100, 200))
GAN_TYPES = ("vanilla", "lsgan", "hinge", "ragan")


def _degraded(hr: np.ndarray, s: int) -> np.ndarray:
  return imresize.to_uint8(imresize.imresize(imresize.imresize(hr / 255.0, 1 / s), float(s)))


def patches(data_dir: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(HR, SR, EMA output) float64 NHWC in [0, 1]: two real crops, their x4 bicubic down-up version, and an 'EMA
  output' HR + 0.6 (SR - HR) + N(0, 0.02) (seeded), better than SR in most pixels, not in all, and never tied."""
  hr, sr = [], []
  for rel, t, l in CROPS:
    img = imresize.modcrop(np.asarray(Image.open(os.path.join(data_dir, rel)).convert("RGB")), 4)
    cut = lambda a: a[t:t + PATCH, l:l + PATCH].astype(np.float64) / 255.0
    hr.append(cut(img))
    sr.append(cut(_degraded(img, 4)))
  hr, sr = np.stack(hr), np.stack(sr)
  return hr, sr, hr + 0.6 * (sr - hr) + np.random.default_rng(5).normal(0, 0.02, hr.shape)


def ms_ssim_patches(data_dir: str) -> tuple[np.ndarray, np.ndarray]:
  """(HR, SR) float64 NHWC: two 171x166 crops of Set14 baboon and their x4 bicubic down-up versions."""
  img = imresize.modcrop(np.asarray(Image.open(os.path.join(data_dir, "Set14/baboon.png")).convert("RGB")), 4)
  deg = _degraded(img, 4)
  cut = lambda a, t, l: a[t:t + 171, l:l + 166].astype(np.float64) / 255.0
  return (np.stack([cut(img, 10, 20), cut(img, 300, 250)]), np.stack([cut(deg, 10, 20), cut(deg, 300, 250)]))


def logits() -> tuple[np.ndarray, np.ndarray]:
  """(real, fake) discriminator logits, NHWC (2, 8, 8, 1), seeded."""
  rng = np.random.default_rng(7)
  return rng.normal(0.5, 1.5, (2, 8, 8, 1)), rng.normal(-0.3, 1.5, (2, 8, 8, 1))


def _definitions(path: str, names: set[str], prelude: str) -> dict:
  with open(path) as f:
    tree = ast.parse(f.read())
  keep = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name in names]
  for n in keep:
    n.decorator_list = []  # BasicSR's registries.
  assert {n.name for n in keep} == names, (path, names)
  namespace: dict = {}
  exec(prelude + ast.unparse(ast.Module(keep, [])), namespace)
  return namespace


def main():
  import torch

  bsr = os.environ["BASICSR_DIR"]
  prelude = "import cv2\nimport numpy as np\nimport torch\nfrom torch import nn\nfrom torch.nn import functional as F\n"
  ssim_ns = _definitions(os.path.join(bsr, "metrics", "psnr_ssim.py"), {"_ssim_pth"}, prelude)
  ldl_ns = _definitions(os.path.join(bsr, "losses", "loss_util.py"),
                        {"get_local_weights", "get_refined_artifact_map"}, prelude)
  gan_ns = _definitions(os.path.join(bsr, "losses", "gan_loss.py"), {"GANLoss"}, prelude)
  nchw = lambda a, grad=False: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2))).requires_grad_(grad)
  back = lambda t: t.grad.numpy().transpose(0, 2, 3, 1).astype(np.float32)  # Stored in float32 (small file).
  out = {}
  hr, sr, ema = patches(os.environ["SR_DATA_DIR"])
  x = nchw(sr, True)
  loss = 1 - ssim_ns["_ssim_pth"](x * 255.0, nchw(hr) * 255.0).mean()
  loss.backward()
  out.update(ssim_loss=loss.item(), ssim_grad=back(x))
  x = nchw(sr, True)
  weight = ldl_ns["get_refined_artifact_map"](nchw(hr), x, nchw(ema), 7)
  out["ldl_map"] = weight.detach().numpy().transpose(0, 2, 3, 1).astype(np.float32)
  loss = torch.nn.functional.l1_loss(weight * x, weight * nchw(hr))
  loss.backward()
  out.update(ldl_loss=loss.item(), ldl_grad=back(x))
  import pytorch_msssim
  hr2, sr2 = ms_ssim_patches(os.environ["SR_DATA_DIR"])
  x = nchw(sr2, True)
  t = np.arange(11) - 5  # Its _fspecial_gauss_1d in float64: its own float32 window moves the loss by 3e-6.
  win = torch.from_numpy(np.exp(-t ** 2 / (2 * 1.5 ** 2)) / np.exp(-t ** 2 / (2 * 1.5 ** 2)).sum())
  loss = 1 - pytorch_msssim.ms_ssim(x, nchw(hr2), data_range=1.0, size_average=True,
                                    win=win[None, None, None].repeat(3, 1, 1, 1))
  loss.backward()
  out.update(ms_ssim_loss=loss.item(), ms_ssim_grad_every5=back(x)[:, ::5, ::5])
  real_np, fake_np = logits()
  for gan_type in GAN_TYPES:
    cri = gan_ns["GANLoss"]("vanilla" if gan_type == "ragan" else gan_type)
    real, fake = nchw(real_np, True), nchw(fake_np, True)
    if gan_type == "ragan":  # esrgan_model.py (its detach() calls change no value, only which net gets grads).
      g = (cri(real - fake.mean(), False) + cri(fake - real.mean(), True)) / 2
      d = cri(real - fake.mean(), True, is_disc=True) * 0.5 + cri(fake - real.mean(), False, is_disc=True) * 0.5
    else:
      g = cri(fake, True, is_disc=False)
      d = cri(real, True, is_disc=True) + cri(fake, False, is_disc=True)
    g_real, g_fake = torch.autograd.grad(g, (real, fake), allow_unused=True, materialize_grads=True)
    d_real, d_fake = torch.autograd.grad(d, (real, fake))
    for name, v in (("g", g), ("d", d)):
      out[f"{gan_type}_{name}"] = v.item()
    for name, v in (("g_real", g_real), ("g_fake", g_fake), ("d_real", d_real), ("d_fake", d_fake)):
      out[f"{gan_type}_{name}_grad"] = v.numpy().transpose(0, 2, 3, 1)
  out["how"] = np.array(__doc__.strip().splitlines()[0] + f" torch {torch.__version__}, basicsr 1.4.2.")
  np.savez_compressed(os.path.join(os.path.dirname(os.path.abspath(__file__)), "losses_reference.npz"), **out)
  print({k: v for k, v in out.items() if np.ndim(v) == 0 and k != "how"})


if __name__ == "__main__":
  main()
