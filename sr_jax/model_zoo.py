"""Published SR checkpoints that sr_jax can import: where they are, what they are, how to check them.

``fetch(name, workdir)`` downloads the file into the cache (``$SR_JAX_CACHE`` or ``~/.cache/sr_jax``; kept,
so a second fetch does not download again), checks its SHA-256 where one is published (for the others it
prints the hash it computed, to pin), and imports it into a new workdir (``importers.import_to_workdir``).
Nothing enters the cache unchecked (``download``: the full Content-Length, the hash, and the weights format
read through: a truncated file or an HTML error page is refused), and a cached file that fails later names
itself and how to clear it. Temporary files of downloads that were killed are removed on the next fetch.
``file=`` imports a copy the user already has instead, with the same checks; ``url=`` overrides the source
(a mirror, or the tests' local server).
"""

from __future__ import annotations

import dataclasses
import os

from sr_jax import atomic, download, importers, weights_io
from sr_jax.errors import DataError, UserError

_REAL_ESRGAN = "https://github.com/xinntao/Real-ESRGAN/releases/download"
_MMAGIC = "https://download.openmmlab.com/mmediting/restorers/rdn"
_ISR = "https://public-asai-dl-models.s3.eu-central-1.amazonaws.com/ISR"


@dataclasses.dataclass(frozen=True)
class Entry:
  url: str
  architecture: str  # model.name with the fields that matter, e.g. 'rrdbnet x4, 23 blocks'.
  scale: int
  trained_on: str
  expect: str  # The published figure or the intended use.
  sha256: str | None = None  # Full hash or its first hex digits (torch.hub names); None: none published.

  @property
  def file(self) -> str:
    return self.url.rsplit("/", 1)[-1]


ZOO = {
    "realesrgan_x4plus": Entry(
        f"{_REAL_ESRGAN}/v0.1.0/RealESRGAN_x4plus.pth", "rrdbnet, 23 blocks, 64 features, growth 32", 4,
        "DF2K + OST, Real-ESRGAN degradations, L1 + VGG19 perceptual + U-Net GAN",
        "real-world photos (no PSNR target: texture over fidelity)"),
    "realesrnet_x4plus": Entry(
        f"{_REAL_ESRGAN}/v0.1.1/RealESRNet_x4plus.pth", "rrdbnet, 23 blocks, 64 features, growth 32", 4,
        "DF2K + OST, Real-ESRGAN degradations, L1 (the GAN stage's starting point)",
        "real-world photos, smoother than realesrgan_x4plus"),
    "realesrgan_x2plus": Entry(
        f"{_REAL_ESRGAN}/v0.2.1/RealESRGAN_x2plus.pth", "rrdbnet x2 (pixel-unshuffle), 23 blocks", 2,
        "DF2K + OST, Real-ESRGAN degradations, GAN stage", "real-world photos at x2"),
    "realesrgan_x4plus_anime_6b": Entry(
        f"{_REAL_ESRGAN}/v0.2.2.4/RealESRGAN_x4plus_anime_6B.pth", "rrdbnet, 6 blocks, 64 features, growth 32", 4,
        "anime images, Real-ESRGAN degradations, GAN stage", "anime / illustrations"),
    # mmagic's file names end in the first 8 hex digits of the file's SHA-256 (mmcv's publish_model).
    **{f"mmagic_rdn_x{s}": Entry(
        f"{_MMAGIC}/rdn_x{s}c64b16_g1_1000k_div2k_20210419-{h}.pth", "rdn, D16 C8 G64 G0 64", s,
        "DIV2K, MATLAB bicubic, L1, 1M iterations", f"Set5 x{s} {p} dB (mmagic's figure, on RGB, not Y)", h)
       for s, h, p in ((2, "dc146009", "35.99"), (3, "b93cb6aa", "32.61"), (4, "3577d44f", "30.49"))},
    "isr_rdn_psnr_large": Entry(
        f"{_ISR}/rdn-C6-D20-G64-G064-x2/PSNR-driven/rdn-C6-D20-G64-G064-x2_PSNR_epoch086.hdf5",
        "isr_rdn, D20 C6 G64 G0 64", 2, "DIV2K, bicubic, PSNR-driven (idealo ISR)", "x2, fidelity"),
    "isr_rdn_psnr_small": Entry(
        f"{_ISR}/rdn-C3-D10-G64-G064-x2/PSNR-driven/rdn-C3-D10-G64-G064-x2_PSNR_epoch134.hdf5",
        "isr_rdn, D10 C3 G64 G0 64", 2, "DIV2K, bicubic, PSNR-driven (idealo ISR)", "x2, fast"),
    "isr_rdn_noise_cancel": Entry(
        f"{_ISR}/rdn-C6-D20-G64-G064-x2/ArtefactCancelling/rdn-C6-D20-G64-G064-x2_ArtefactCancelling_epoch219.hdf5",
        "isr_rdn, D20 C6 G64 G0 64", 2, "DIV2K with JPEG-compressed LR (idealo ISR, artefact cancelling)",
        "x2 of JPEG photos, removes compression artefacts"),
    "isr_rrdn_gans": Entry(
        f"{_ISR}/rrdn-C4-D3-G32-G032-T10-x4-GANS/rrdn-C4-D3-G32-G032-T10-x4_epoch299.hdf5",
        "isr_rrdn, T10 D3 C4 G32 G0 32", 4, "DIV2K, VGG19 feature + adversarial losses (idealo ISR)",
        "x4 photos, sharp textures"),
}


def cache_dir() -> str:
  return os.environ.get("SR_JAX_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "sr_jax")


def entry(name: str) -> Entry:
  if name not in ZOO:
    raise DataError(f"unknown pretrained model {name!r}; available: {', '.join(sorted(ZOO))}")
  return ZOO[name]


def _verify(path: str, e: Entry) -> str:
  got = download.sha256(path)
  if e.sha256 and not got.startswith(e.sha256.lower()):
    raise DataError(f"{path}: sha256 {got} does not match the published {e.sha256}; not importing it")
  return got


def _damaged_cache(path: str, e: Exception) -> DataError:
  return DataError(f"the cached file {path} cannot be used ({e}); delete it (rm {path}) and fetch again")


def fetch(name: str, workdir: str, *, file: str | None = None, url: str | None = None, timeout: float = 60.0,
          deadline: float | None = download.DEFAULT_DEADLINE, progress: bool = True) -> tuple[dict, str]:
  """Imports pretrained model ``name`` into ``workdir``; returns (model fields, the file's sha256)."""
  e = entry(name)
  importers.check_new_workdir(workdir)
  ext = os.path.splitext(e.file)[1]
  cached = False
  if file:
    if not os.path.isfile(file):
      raise DataError(f"--file {file} does not exist")
    path = file
  else:
    path = os.path.join(cache_dir(), e.file)
    atomic.remove_stale(cache_dir(), downloads=(e.file,))
    if os.path.isfile(path):
      cached = True  # Verified when it was downloaded; if it fails to import now, the message names it.
    else:
      try:
        download.download(url or e.url, path, digest=e.sha256, timeout=timeout, deadline=deadline,
                          progress=progress, check=lambda tmp: weights_io.verify(tmp, ext))
      except DataError as err:
        raise DataError(f"{err}. Without a network: download {e.file} on a connected machine and give "
                        "--file=PATH") from None
  try:
    digest = _verify(path, e)
    fields = importers.import_to_workdir(path, workdir)
  except UserError as err:  # A damaged cached file fails here (a wrong hash, an unreadable or wrong layout).
    if cached:
      raise _damaged_cache(path, err) from None
    raise
  if fields["scale"] != e.scale:
    raise DataError(f"{path} holds a x{fields['scale']} model, but {name} is x{e.scale}: not the published file")
  return fields, digest
