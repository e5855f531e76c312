"""Reads weight files into ``{name: float32 array}``: the one reader behind the VGG loader and the importers.

Formats: ``.pth``/``.pt`` (PyTorch, needs torch; ``weights_only`` loading, never arbitrary pickles), ``.safetensors``,
``.npz`` and ``.h5``/``.hdf5`` (Keras; names are the datasets' paths, e.g. ``block1_conv1/block1_conv1_W_1:0``).
Checkpoints that nest their tensors (``params_ema``, ``params``, ``state_dict``, ``model``: BasicSR, mmagic,
EDSR-PyTorch) are unwrapped, preferring ``params_ema`` (also when flattened into .npz/.safetensors names such as
``params_ema.conv_first.weight``); DataParallel's ``module.`` prefix is removed.
"""

from __future__ import annotations

import json
import os
import struct
import zipfile

import h5py
import numpy as np
from safetensors.numpy import load_file as load_safetensors

from sr_jax.core.errors import UserError

EXTENSIONS = (".pth", ".pt", ".safetensors", ".npz", ".h5", ".hdf5")
_NESTING_KEYS = ("params_ema", "params", "state_dict", "model")


class WeightsFileError(UserError, ValueError):
  """A weights file is missing, of an unknown format or unreadable; the message names it."""


def _torch(path: str) -> dict:
  try:
    import torch  # Optional: only .pth files need it.
  except ImportError:
    raise WeightsFileError(f"{path}: reading .pth needs PyTorch (pip install torch); or convert it once to "
                           ".safetensors/.npz on a machine that has torch (keys unchanged)") from None
  obj = torch.load(path, map_location="cpu", weights_only=True)
  for key in _NESTING_KEYS:
    if isinstance(obj, dict) and isinstance(obj.get(key), dict):
      obj = obj[key]
      break
  return {k: v.detach().float().numpy() for k, v in obj.items() if hasattr(v, "detach")}


def _h5(path: str) -> dict:
  out = {}
  with h5py.File(path, "r") as f:
    f.visititems(lambda name, obj: out.__setitem__(name, np.asarray(obj)) if isinstance(obj, h5py.Dataset)
                 and obj.dtype.kind == "f" else None)
  return out


def read_tensors(path: str, ext: str | None = None) -> dict[str, np.ndarray]:
  """All float tensors of a weights file as float32 NumPy arrays, keyed by name (format by ``ext``, default the
  file's extension)."""
  if not os.path.isfile(path):
    raise WeightsFileError(f"weights file {path} does not exist")
  ext = (ext or os.path.splitext(path)[1]).lower()
  if ext not in EXTENSIONS:
    raise WeightsFileError(f"{path}: unsupported weights format {ext!r}; accepted: {', '.join(EXTENSIONS)}")
  try:
    if ext in (".pth", ".pt"):
      tensors = _torch(path)
    elif ext == ".safetensors":
      tensors = load_safetensors(path)
    elif ext == ".npz":
      with np.load(path, allow_pickle=False) as z:
        tensors = {k: z[k] for k in z.files}
    else:
      tensors = _h5(path)
  except WeightsFileError:
    raise
  except Exception as e:  # Truncated files, not-a-zip, not-HDF5, ...: name the file.
    raise WeightsFileError(f"cannot read {path}: {type(e).__name__}: {e}") from e
  return {k.removeprefix("module."): np.asarray(v, np.float32) for k, v in _unnest_flat(tensors).items()}


def _unnest_flat(tensors: dict) -> dict:
  """A flattened nested checkpoint ('params_ema.conv_first.weight', 'params.conv_first.weight', ...; what
  saving a BasicSR .pth as .npz/.safetensors gives): the first of _NESTING_KEYS present, prefix removed."""
  for key in ("params_ema", "params", "state_dict"):  # Not 'model.': EDSR and ESRGAN name modules with it.
    inner = {k[len(key) + 1:]: v for k, v in tensors.items() if k.startswith(key + ".")}
    if inner:
      return inner
  return tensors


_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"  # torch.save before 1.6.


def _looks_like(head: bytes) -> str:
  text = head.lstrip()[:64].lower()
  if text.startswith((b"<!doctype html", b"<html", b"<?xml", b"<")):
    return "an HTML/XML page (an error page from the server?)"
  if text.startswith((b"{", b"[")):
    return "JSON text"
  return f"bytes {head[:8]!r}"


def verify(path: str, ext: str) -> None:
  """Checks that ``path`` is a complete, readable weights file of format ``ext`` without importing it; raises
  WeightsFileError saying what it is instead. .npz/.safetensors/.h5 are read in full; .pth/.pt (no torch needed)
  must be a zip archive whose every member passes its CRC, or a legacy torch.save file."""
  ext = ext.lower()
  with open(path, "rb") as f:
    head = f.read(64)
  size = os.path.getsize(path)
  if not head:
    raise WeightsFileError(f"{path} is empty")
  if ext in (".pth", ".pt", ".npz"):
    if head.startswith(_TORCH_LEGACY_MAGIC) and ext != ".npz":
      return
    if not head.startswith(b"PK"):
      raise WeightsFileError(f"{path} is not a {ext} file: it holds {_looks_like(head)}")
    try:
      with zipfile.ZipFile(path) as z:
        bad = z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as e:
      raise WeightsFileError(f"{path} is a damaged or truncated {ext} file ({size:,} bytes: {e})") from e
    if bad is not None:
      raise WeightsFileError(f"{path} is a damaged {ext} file (member {bad} fails its CRC check)")
    if ext == ".npz":
      read_tensors(path, ext)
    return
  if ext == ".safetensors":
    n = struct.unpack("<Q", head[:8])[0] if len(head) >= 8 else 0
    try:
      with open(path, "rb") as f:
        f.seek(8)
        header = json.loads(f.read(n)) if 0 < n < size else None
    except (ValueError, UnicodeDecodeError):
      header = None
    if not isinstance(header, dict):
      raise WeightsFileError(f"{path} is not a .safetensors file: it holds {_looks_like(head)}")
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + n + end != size:
      raise WeightsFileError(f"{path} is a truncated .safetensors file ({size:,} bytes; its header describes "
                             f"{8 + n + end:,})")
    return
  if ext in (".h5", ".hdf5"):
    if not head.startswith(_HDF5_MAGIC):
      raise WeightsFileError(f"{path} is not an HDF5 ({ext}) file: it holds {_looks_like(head)}")
    read_tensors(path, ext)
    return
  raise WeightsFileError(f"{path}: unsupported weights format {ext!r}; accepted: {', '.join(EXTENSIONS)}")
