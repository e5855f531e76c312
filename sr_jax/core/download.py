"""Verified downloads: nothing reaches the destination name until it is complete and checked.

A download is written under a hidden temporary name in the destination's folder (``atomic.replace``) and renamed
only once (1) the bytes received equal the server's Content-Length (``urllib`` returns a short body without an
error when a server closes early), (2) the size and SHA-256 that are known match, and (3) ``check(path)``, the
caller's format check (a weights file must parse as one: an HTML error page is refused), passes. ``timeout`` bounds
the wait for each read; ``deadline`` bounds the whole transfer, so a server that drips bytes cannot hold a fetch
for ever. ``file://`` URLs work too (a local copy, and the tests).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import time
import urllib.error
import urllib.request
from typing import Callable

from tqdm import tqdm

from sr_jax.core import atomic
from sr_jax.core.errors import DataError

DEFAULT_DEADLINE = 1800.0  # Seconds a whole download may take (a 67 MB checkpoint at 40 kB/s).


def sha256(path: str) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      h.update(block)
  return h.hexdigest()


def download(url: str, dst: str, *, size: int | None = None, digest: str | None = None, timeout: float = 60.0,
             deadline: float | None = DEFAULT_DEADLINE, check: Callable[[str], None] | None = None,
             progress: bool = False) -> str:
  """Fetches ``url`` into ``dst``; ``digest`` is the SHA-256 (or its first hex digits, as in torch.hub file
  names). Returns the file's SHA-256. Raises DataError naming the URL on a failure, a short body, a mismatch or
  a failed ``check``; ``dst`` (and anything already there) is then left as it was."""
  os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
  start, h, received = time.monotonic(), hashlib.sha256(), 0
  try:
    with urllib.request.urlopen(url, timeout=timeout) as response, atomic.replace(dst) as f:
      expected = response.headers.get("Content-Length")
      expected = int(expected) if expected and expected.isdigit() else None
      read = getattr(response, "read1", response.read)  # read1: at most one socket read, so the deadline holds.
      with tqdm(total=expected, unit="B", unit_scale=True, desc=os.path.basename(dst), disable=not progress) as bar:
        while block := read(1 << 16):
          f.write(block)
          h.update(block)
          received += len(block)
          bar.update(len(block))
          if deadline is not None and time.monotonic() - start > deadline:
            raise DataError(f"{url}: download not complete after {deadline:g} s ({received:,} of "
                            f"{'?' if expected is None else f'{expected:,}'} bytes); the file was not kept. The "
                            "server is too slow: try again later, a mirror, or a longer --deadline")
      if expected is not None and received != expected:
        raise DataError(f"{url}: the server closed the connection after {received:,} of {expected:,} bytes "
                        "(truncated download); the file was not kept. Try again")
      got = h.hexdigest()
      if (size is not None and received != size) or (digest and not got.startswith(digest.lower())):
        raise DataError(f"{url}: checksum mismatch ({received:,} bytes, sha256 {got}; expected "
                        f"{'' if size is None else f'{size:,} bytes, '}sha256 {digest}); the file was not kept")
      if check is not None:
        f.flush()
        try:
          check(f.name)
        except Exception as e:  # noqa: BLE001  (whatever the check raises, the download is refused)
          raise DataError(f"{url}: the downloaded file is not usable ({e}); the file was not kept") from e
    return got
  except DataError:
    raise
  except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:  # ValueError: a bad URL.
    raise DataError(f"{url}: download failed ({e}); check the connection, or give a local copy") from e
