"""The shipped experiment configs, installed with the package.

``--config`` takes a file path (``configs/quickstart.py``, or your own file) or the name of a shipped
config (``quickstart``), which works from any directory once sr_jax is installed.
"""

from __future__ import annotations

import difflib
import os

from sr_jax.core.errors import UserError

DIR = os.path.dirname(os.path.abspath(__file__))


def names() -> list[str]:
  return sorted(f[:-3] for f in os.listdir(DIR) if f.endswith(".py") and not f.startswith("_"))


class ConfigNotFoundError(UserError, FileNotFoundError):
  """--config names neither a file nor a shipped config."""


def path(spec: str) -> str:
  """A config file path for ``spec`` (a path, or a shipped config's name; a ``:arg`` suffix is kept). Raises
  ConfigNotFoundError naming the closest shipped configs when it is neither."""
  file, sep, arg = spec.partition(":")
  if os.path.isfile(file):
    return spec
  name = os.path.basename(file)
  name = name[:-3] if name.endswith(".py") else name
  if os.sep not in file and name in names():
    return os.path.join(DIR, f"{name}.py") + sep + arg
  close = difflib.get_close_matches(name, names(), n=3, cutoff=0.6)
  what = "is a folder, not a config file" if os.path.isdir(file) else "does not exist"
  raise ConfigNotFoundError(f"--config={spec}: {file} {what} and is not a shipped config"
                            + (f"; did you mean {' or '.join(close)}?" if close else "")
                            + f" Shipped configs: {', '.join(names())}")


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
