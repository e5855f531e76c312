"""core/locks.py: locks name their holder and die with it."""

import subprocess
import sys

from programs import REPO
from sr_jax.core import locks


def test_locks_name_their_holder_and_die_with_it(tmp_path):
  path = str(tmp_path / "l")
  proc = subprocess.Popen([sys.executable, "-c", "import time\nfrom sr_jax import locks\n"
                           f"assert locks.Lock({path!r}, 'launcher').acquire() is None\nprint('held', flush=True)\n"
                           "time.sleep(600)"], cwd=REPO, stdout=subprocess.PIPE, text=True)
  assert proc.stdout.readline().strip() == "held"
  assert locks.holder(path).startswith(f"launcher PID {proc.pid} on host")
  proc.kill()
  proc.wait()
  assert locks.holder(path) is None
