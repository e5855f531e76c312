"""The exception every user-facing problem derives from, so each CLI prints it as one clear line.

A ``UserError`` is about the user's input or environment (a config value, a file, a folder, a busy workdir, a
full disk, a diverged run): its message names the key or file and says what to do. Anything else is a bug and
keeps its traceback.
"""


class UserError(Exception):
  """A problem with the user's config, files or workdir; the message is complete without a traceback."""


class DataError(UserError, ValueError):
  """No usable data where some was expected, or data that does not fit; the message names the source."""
