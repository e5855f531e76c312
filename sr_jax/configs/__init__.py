"""The shipped experiment configs, installed with the package.

``--config`` takes a file path (``sr_jax/configs/quickstart.py``, or your own file) or the name of a shipped
config (``quickstart``), which works from any directory once sr_jax is installed.
"""

from __future__ import annotations

import os

DIR = os.path.dirname(os.path.abspath(__file__))


def names() -> list[str]:
  return sorted(f[:-3] for f in os.listdir(DIR) if f.endswith(".py") and not f.startswith("_"))


def path(spec: str) -> str:
  """A config file path for ``spec`` (a path, or a shipped config's name; a ``:arg`` suffix is kept)."""
  file, sep, arg = spec.partition(":")
  if os.path.exists(file) or os.sep in file:
    return spec
  name = file[:-3] if file.endswith(".py") else file
  if name in names():
    return os.path.join(DIR, f"{name}.py") + sep + arg
  return spec  # Let ml_collections report the missing file.


def resolve_argv(argv: list[str], flag: str = "config") -> list[str]:
  """``argv`` with the value of ``--<flag>`` (``--flag=V`` or ``--flag V``) resolved by ``path``."""
  out, resolve_next = [], False
  for arg in argv:
    if resolve_next:
      arg, resolve_next = path(arg), False
    elif arg.startswith(f"--{flag}="):
      arg = f"--{flag}=" + path(arg.split("=", 1)[1])
    elif arg == f"--{flag}":
      resolve_next = True
    out.append(arg)
  return out
