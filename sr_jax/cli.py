"""Running a command-line program: absl's app.run, with user errors printed as one line.

``run(main)`` calls ``main`` under absl. A flag that does not parse (an unknown ``--config.`` key, a value of
the wrong type) and a ``UserError`` (or a missing file/folder) raised by ``main`` end the program with
``<program>: error: <message>`` on stderr and exit status 1, without a traceback unless ``--verbose`` (each CLI
defines it) is given. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
import sys
from typing import Callable

from absl import app, flags

from sr_jax.errors import UserError

USER_ERRORS = (UserError, FileNotFoundError, FileExistsError, NotADirectoryError)


def _fail(message: str) -> None:
  print(f"{os.path.basename(sys.argv[0]) or 'sr_jax'}: error: {message}", file=sys.stderr, flush=True)
  sys.exit(1)


def _message(e: BaseException) -> str:
  """The innermost message: ml_collections wraps a KeyError (whose str() is a repr) in an AttributeError."""
  while e.args and isinstance(e.args[0], BaseException):
    e = e.args[0]
  text = e.args[0] if e.args and isinstance(e.args[0], str) else str(e)
  return " ".join(text.split())


def _parse_flags(argv: list[str]) -> list[str]:
  try:
    return flags.FLAGS(argv)
  except (AttributeError, KeyError) as e:  # ml_collections: an override of a field the config does not have.
    _fail(f"unknown config field {_message(e)} (--helpfull lists the flags)")
  except (flags.Error, TypeError, ValueError) as e:
    _fail(f"{_message(e)} (--helpfull lists the flags)")


def run(main: Callable[[list[str]], None], argv: list[str] | None = None) -> None:

  def guarded(args: list[str]) -> None:
    try:
      main(args)
    except USER_ERRORS as e:
      if "verbose" in flags.FLAGS and flags.FLAGS.verbose:
        raise
      _fail(_message(e) if not isinstance(e, OSError) else str(e))

  app.run(guarded, argv=argv, flags_parser=_parse_flags)
