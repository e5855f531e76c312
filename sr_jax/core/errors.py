"""The exceptions every user-facing problem derives from, so each CLI prints it as one clear line.

A ``UserError`` is about the user's input or environment (a config value, a file, a folder, a busy workdir, a
full disk, a diverged run): its message names the key or file and says what to do. Anything else is a bug and
keeps its traceback. Errors the operating system reports about the user's files (an ``OSError``: missing,
unreadable, read-only, a full disk) are the user's too, wherever they are raised (``sr_jax.cli``).
"""

import os
import traceback


class UserError(Exception):
  """A problem with the user's config, files or workdir; the message is complete without a traceback."""


class DataError(UserError, ValueError):
  """No usable data where some was expected, or data that does not fit; the message names the source."""


class DiskFullError(UserError, OSError):
  """The disk filled up while writing; what was complete before is intact and the message says what to do."""


def is_disk_full(e: BaseException | None) -> bool:
  """Whether ``e`` or an exception it was raised from is a full disk, whatever library reported it (an OSError
  with ENOSPC; Orbax's ValueError "RESOURCE_EXHAUSTED ... No space left on device"; TensorFlow's
  ResourceExhaustedError from a summary writer; CLU's AsyncError wrapping one)."""
  seen = set()
  while e is not None and id(e) not in seen:
    seen.add(id(e))
    if (isinstance(e, OSError) and e.errno == 28) or "No space left on device" in str(e):
      return True
    e = e.__cause__ or e.__context__
  return False


class MetricWeightsError(UserError, ValueError):
  """A metric's weights (LPIPS, DISTS) are missing or unusable; the message says how to install them."""


class UserCodeError(UserError):
  """A file of the user's Python (a config file, a sweep file) failed to load or run; the message names the file,
  the line and the error, and the traceback is the cause (shown with --verbose)."""


def in_user_file(e: BaseException, path: str, what: str) -> UserCodeError | None:
  """A ``UserCodeError`` for ``e`` if it was raised while running ``path`` (a SyntaxError in it, or a traceback
  frame in it: the deepest one gives the line); None when ``path`` played no part (a bug elsewhere)."""
  target = os.path.realpath(path)
  line, where = None, ""
  if isinstance(e, SyntaxError) and e.filename and os.path.realpath(e.filename) == target:
    line = e.lineno
  else:
    for frame in traceback.extract_tb(e.__traceback__):
      if os.path.realpath(frame.filename) == target:
        line, where = frame.lineno, f" (in {frame.name})" if frame.name != "<module>" else ""
  if line is None:
    return None
  text = e.msg if isinstance(e, SyntaxError) else str(e)
  return UserCodeError(f"{what} {path} line {line}{where}: {type(e).__name__}: {text}")


class ConfigError(UserError, ValueError):
  """A config value is invalid or contradicts the workdir; the message names the key."""


def require(ok: bool, key: str, value, accepted: str) -> None:
  """The check every part runs on its own config section: raises ConfigError naming ``config.key``, its value
  and what is accepted."""
  if not ok:
    raise ConfigError(f"config.{key}={value!r} is invalid; accepted: {accepted}")
