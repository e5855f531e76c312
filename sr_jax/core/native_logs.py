"""Start-up banners that native code prints straight to file descriptor 2, out of reach of Python's logging.

TensorFlow 2.21 logs through C++ absl before ``absl::InitializeLog()`` while it is imported ("WARNING: All log
messages before absl::InitializeLog() ...", "oneDNN custom operations are on ...", twice), whatever
``TF_CPP_MIN_LOG_LEVEL`` says. ``quiet_banners()`` runs a block (the import) with fd 2 sent to a temporary file
and writes back every line but those banners; set ``SR_JAX_VERBOSE=1`` to see them.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from typing import Iterator

BANNERS = ("All log messages before absl::InitializeLog() is called", "oneDNN custom operations are on",
           "cpu_feature_guard.cc", "This TensorFlow binary is optimized")


@contextlib.contextmanager
def quiet_banners() -> Iterator[None]:
  if os.environ.get("SR_JAX_VERBOSE"):
    yield
    return
  sys.stderr.flush()
  with tempfile.TemporaryFile() as tmp:
    saved = os.dup(2)
    os.dup2(tmp.fileno(), 2)
    try:
      yield
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      tmp.seek(0)
      kept = [line for line in tmp.read().decode(errors="replace").splitlines(keepends=True)
              if not any(b in line for b in BANNERS)]
      sys.stderr.write("".join(kept))
      sys.stderr.flush()
