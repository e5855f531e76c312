"""Verified downloads: a file is written under a temporary name and renamed only once its size and SHA-256
(those that are known) match, so an interrupted or corrupted download never leaves a file that looks complete.
``file://`` URLs work too (a local copy, and the tests)."""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request

from tqdm import tqdm

from sr_jax.errors import DataError


def sha256(path: str) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      h.update(block)
  return h.hexdigest()


def download(url: str, dst: str, *, size: int | None = None, digest: str | None = None, timeout: float = 60.0,
             progress: bool = False) -> str:
  """Fetches ``url`` into ``dst``; ``digest`` is the SHA-256 (or its first hex digits, as in torch.hub file
  names). Returns the file's SHA-256. Raises DataError naming the URL on a failure or a mismatch."""
  tmp = f"{dst}.part{os.getpid()}"
  os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
  try:
    with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as f:
      total = int(response.headers.get("Content-Length") or 0) or None
      with tqdm(total=total, unit="B", unit_scale=True, desc=os.path.basename(dst), disable=not progress) as bar:
        while block := response.read(1 << 20):
          f.write(block)
          bar.update(len(block))
    got, got_size = sha256(tmp), os.path.getsize(tmp)
    if (size is not None and got_size != size) or (digest and not got.startswith(digest.lower())):
      raise DataError(f"{url}: checksum mismatch ({got_size:,} bytes, sha256 {got}; expected "
                      f"{'' if size is None else f'{size:,} bytes, '}sha256 {digest}); the file was not kept")
    os.replace(tmp, dst)
    return got
  except (urllib.error.URLError, OSError) as e:
    raise DataError(f"{url}: download failed ({e}); check the connection, or give a local copy") from e
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
