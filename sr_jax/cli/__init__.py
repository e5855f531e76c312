"""Running a command-line program: absl's app.run, with user errors printed as one line and libraries quiet.

``run(main)`` calls ``main`` under absl. A user error ends the program with ``<program>: error: <message>`` on
stderr and exit status 1, without a traceback unless ``--verbose`` (each CLI defines it) is given. What counts
as a user error is decided by where it comes from, not by a list of exception types each module would have to
extend:
- a flag that does not parse, is out of its bounds or is refused by ``main`` (absl's errors, ``app.UsageError``,
  an unknown ``--config.`` key or a config file that cannot be loaded);
- sr_jax's own checks of input, files and workdirs (``errors.UserError`` and its subclasses);
- the operating system about a file or folder (any ``OSError``: missing, unreadable, read-only, a FIFO, a full
  disk), and a full disk however a library reports it (``errors.is_disk_full``).
Anything else is a bug and keeps its traceback.

Before ``main`` runs, ``quiet_libraries`` drops the chatter of Orbax, CLU, TensorFlow and JAX's backend probing
below ERROR from the console, the tracebacks libraries log for a full disk (reported once, by sr_jax) and the
"never awaited" warnings of Orbax coroutines a failed save leaves; ``--verbose`` keeps everything.
"""

from __future__ import annotations

import logging as py_logging
import os
import sys
import warnings
from typing import Callable

from absl import app, flags
from absl import logging as absl_logging

from sr_jax.core import errors

_CHATTY = ("/orbax/", "/clu/", "/jax/_src/xla_bridge.py", "/etils/", "/tensorflow/")


def is_user_error(e: BaseException) -> bool:
  return isinstance(e, (errors.UserError, app.UsageError, flags.Error, OSError)) or errors.is_disk_full(e)


def fail(message: str) -> None:
  print(f"{os.path.basename(sys.argv[0]) or 'sr_jax'}: error: {message}", file=sys.stderr, flush=True)
  sys.exit(1)


def message(e: BaseException) -> str:
  """One line: the innermost message (ml_collections wraps a KeyError, whose str() is a repr, in an
  AttributeError); an OSError as 'FILE: reason'."""
  while e.args and isinstance(e.args[0], BaseException):
    e = e.args[0]
  if isinstance(e, OSError) and e.strerror and not isinstance(e, errors.UserError):
    where = f"{e.filename}: " if e.filename else ""
    return f"{where}{e.strerror}" + (" (the disk is full: free space and run the same command again)"
                                     if e.errno == 28 else "")
  if errors.is_disk_full(e) and not isinstance(e, errors.UserError):
    return f"the disk is full ({' '.join(str(e).split())[:200]}); free space and run the same command again"
  text = e.args[0] if e.args and isinstance(e.args[0], str) else str(e)
  return " ".join(text.split())


def quiet_libraries(verbose: bool = False) -> None:
  """Keeps the console to what the user needs (see the module docstring); idempotent."""
  if verbose:
    return

  def keep(record: py_logging.LogRecord) -> bool:
    path = record.pathname.replace("\\", "/")
    if record.levelno < py_logging.ERROR and any(p in path for p in _CHATTY):
      return False
    exc = record.exc_info[1] if record.exc_info else None
    return not (errors.is_disk_full(exc) or "No space left on device" in record.getMessage())

  for handler in {absl_logging.get_absl_handler(), *py_logging.getLogger().handlers}:
    if not any(getattr(f, "_sr_jax", False) for f in handler.filters):
      keep._sr_jax = True
      handler.addFilter(keep)
  py_logging.getLogger("tensorflow").setLevel(py_logging.ERROR)  # Its own handler: "INFO:tensorflow:...".
  warnings.filterwarnings("ignore", module=r"orbax(\.|$)")
  # Orbax's write coroutines left behind by a failed save (a full disk), reported at exit.
  warnings.filterwarnings("ignore", message=r"coroutine .* was never awaited", category=RuntimeWarning)


def _python_files(argv: list[str]) -> list[str]:
  """The Python files named in ``argv`` (``--config=FILE.py`` and the like)."""
  values = [a.split("=", 1)[1] if a.startswith("-") and "=" in a else a for a in argv[1:]]
  return [v for v in values if v.endswith(".py") and os.path.isfile(v)]


def _parse_flags(argv: list[str]) -> list[str]:
  try:
    return _parse_flags_or_config_error(argv)
  except Exception as e:  # noqa: BLE001  (a config file of the user's that fails to load: one line)
    located = next((err for f in _python_files(argv) if (err := errors.in_user_file(e, f, "config file"))), None)
    if located is None or any(a in ("--verbose", "-verbose") for a in argv):
      raise
    fail(message(located) + " (--verbose shows the traceback)")


def _parse_flags_or_config_error(argv: list[str]) -> list[str]:
  try:
    return flags.FLAGS(argv)
  except (AttributeError, KeyError) as e:  # ml_collections: an override of a field the config does not have.
    fail(f"unknown config field {message(e)} (--helpfull lists the flags)")
  except (flags.Error, TypeError, ValueError, OSError, errors.UserError) as e:
    fail(f"{message(e)} (--helpfull lists the flags)")


_HELP = ("--help", "-help", "-h", "-?", "--helpshort", "-helpshort")


def starting(what: str) -> None:
  """A first line, on stdout, before a program's long imports (JAX, TensorFlow: seconds on a small machine), so
  that no command starts with a silent wait; not for ``--help``."""
  if not any(a in _HELP for a in sys.argv[1:]):
    print(f"{os.path.basename(sys.argv[0]) or 'sr_jax'}: {what} ...", flush=True)


def help_text(main: Callable, more: str = "") -> str:
  """The program's docstring (its commands) and the flags its module defines, with their help and defaults.

  absl lists the flags of the main module, which for a console script is the wrapper pip wrote, not the module
  that defines them (``sr-upscale --help`` showed none); the flags are looked up by the defining module here."""
  name = main.__module__
  key = sys.argv[0] if name == "__main__" else name  # absl files a __main__ module's flags under argv[0].
  doc = (sys.modules[name].__doc__ or "").strip("\n")
  listed = flags.FLAGS.module_help(key).strip().split("\n", 1)[-1]  # Without absl's "module:" header line.
  return f"{doc}\n{more}\nFlags (--helpfull: every library's too):\n{listed}\n"


def run(main: Callable[[list[str]], None], argv: list[str] | None = None,
        prepare: Callable[[list[str]], list[str]] | None = None, interrupted: str = "",
        more_help: Callable[[], str] | None = None) -> None:
  """``main`` under absl; ``prepare`` maps ``argv`` before parsing (its user errors are one line too). ``--help``
  prints ``help_text`` and exits 0. Ctrl-C ends the program with one line, ``PROGRAM: interrupted (Ctrl-C)``
  and ``interrupted`` (what was kept, how to go on), exit status 130; ``--verbose`` keeps the traceback.
  ``more_help``: text for ``--help`` between the docstring and the flags (e.g. the shipped config names)."""
  if any(a in _HELP for a in (argv if argv is not None else sys.argv)[1:]):
    sys.stdout.write(help_text(main, "\n" + more_help() + "\n" if more_help else ""))
    sys.exit(0)
  if prepare is not None:
    try:
      argv = prepare(argv if argv is not None else sys.argv)
    except errors.UserError as e:
      fail(message(e))

  def guarded(args: list[str]) -> None:
    verbose = "verbose" in flags.FLAGS and flags.FLAGS.verbose
    quiet_libraries(verbose)
    try:
      main(args)
    except KeyboardInterrupt:
      if verbose:
        raise
      print(f"{os.path.basename(sys.argv[0]) or 'sr_jax'}: interrupted (Ctrl-C)" + (f"; {interrupted}" if interrupted
                                                                                   else ""), file=sys.stderr, flush=True)
      sys.exit(130)
    except Exception as e:  # noqa: BLE001  (user errors are printed as one line; bugs are re-raised)
      if verbose or not is_user_error(e):
        raise
      fail(message(e))

  app.run(guarded, argv=argv, flags_parser=_parse_flags)
