"""XLA:CPU flags sr_jax adds to ``XLA_FLAGS`` before JAX starts its backend, for the jaxlib versions where they
were measured (experiments/results/benchmarks.md, "YNNPACK convolutions").

jaxlib 0.10.2 runs every convolution through YNNPACK (448 of the paper RDN train step's 449 sit in
``__ynn_fusion``s); on the 2-core CPU its convolutions are up to 2x slower than XLA's own (Eigen) ones, and
taking them out of YNNPACK makes the quickstart's train step 2.4x faster (0.10 vs 0.24 s) and the paper RDN's
1.4x (6.0 vs 8.3 s at batch 4 of 32²). A flag the user already set (any value) is left as it is, and
``SR_JAX_XLA_FLAGS=0`` turns this off; other jaxlib versions get nothing (XLA aborts on a flag it does not know).
"""

from __future__ import annotations

import importlib.metadata
import os

CPU_FLAGS = {"0.10.2": ("--xla_cpu_experimental_ynn_fusion_type=-individual_convolution",)}
ENV = "SR_JAX_XLA_FLAGS"


def added(environ=os.environ) -> list[str]:
  """The flags ``apply`` adds to ``environ``'s XLA_FLAGS (none when turned off, unknown jaxlib or already set)."""
  if environ.get(ENV, "1") == "0":
    return []
  try:
    version = importlib.metadata.version("jaxlib")
  except importlib.metadata.PackageNotFoundError:
    return []
  current = environ.get("XLA_FLAGS", "")
  return [f for f in CPU_FLAGS.get(version, ()) if f.split("=")[0] not in current]


def apply(environ=os.environ) -> None:
  """Adds ``added()`` to XLA_FLAGS (effective if JAX has not started its CPU backend yet)."""
  extra = added(environ)
  if extra:
    environ["XLA_FLAGS"] = " ".join([environ.get("XLA_FLAGS", ""), *extra]).strip()
