"""Runs one console script's ``run()`` once per argument list in this one process (the CLI audit's driver).

  python tests/cli_driver.py MODULE PROGRAM CASES.json RESULTS.json

CASES.json is a list of argument lists. For each, the flags are reset, ``MODULE.run()`` runs with
``sys.argv = [PROGRAM, *args]`` and everything written to file descriptor 2 is captured (absl's log handler,
tracebacks, our one-line errors alike); RESULTS.json gets ``[{"args", "code", "stderr"}]``. An exception that
escapes ``run()`` is printed as a traceback into the captured stderr (code "exception"), as the console script
would print it.
"""

import importlib
import json
import os
import sys
import tempfile
import traceback

from absl import flags


def _run_once(module, program: str, args: list[str]) -> tuple[object, str]:
  with tempfile.TemporaryFile(mode="w+b") as tmp:
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(tmp.fileno(), 2)
    code: object = 0
    try:
      sys.argv = [program, *args]
      flags.FLAGS.unparse_flags()
      module.run()
    except SystemExit as e:
      code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # noqa: BLE001  (the audit reports it)
      traceback.print_exc()
      code = "exception"
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
    tmp.seek(0)
    return code, tmp.read().decode(errors="replace")


def main() -> None:
  module_name, program, cases_path, results_path = sys.argv[1:5]
  module = importlib.import_module(module_name)
  with open(cases_path) as f:
    cases = json.load(f)
  results = []
  for args in cases:
    code, err = _run_once(module, program, args)
    results.append({"args": args, "code": code, "stderr": err})
  with open(results_path, "w") as f:
    json.dump(results, f)


if __name__ == "__main__":
  main()
