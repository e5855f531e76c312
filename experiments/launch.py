r"""Runs every member of a sweep in its own workdir.

  python -m experiments.launch experiments/loss_study.py --root=runs/loss_study [--parallel=2] [--dry_run]
      [--only=NAME,NAME]
      [--evaluate=Set5,Set14,B100 [--eval_metrics=psnr,ssim,lpips,niqe] [--eval_step=latest]]

Each member trains with ``sr_jax.cli.train`` in ROOT/<name from its overrides>, logging to train.log there, and its
status goes to ROOT/<name>/launch.json. Re-running skips finished members and resumes interrupted ones (the
trainer resumes from its checkpoints). A failing member is reported and the others go on; the exit code is 1
if any failed. Launchers may share a root (e.g. each with its own ``--only``): a member another launcher (or a
trainer started by hand) is running is reported "running elsewhere" and not started twice, and the members that
read it are left "waiting". A member's commands get SIGTERM when their launcher dies, even by ``kill -9``, so the
trainer saves a checkpoint and stops instead of running on unseen. A member that reads another's workdir (``{root}/NAME`` in the sweep file) starts once NAME has
finished, and fails without running if NAME failed. ``--dry_run`` prints the commands (e.g. for a cluster
scheduler, in an order that respects those dependencies) and runs nothing.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shlex
import socket
import subprocess
import sys
import threading
import time
from typing import NamedTuple, Sequence

from absl import app, flags

from experiments import common_flags, sweep_lib
from sr_jax import cli
from sr_jax.core import atomic, locks
from sr_jax.workdir import checkpoint_io, run_dir

FLAGS = flags.FLAGS
flags.adopt_module_key_flags(common_flags)  # --data_dir is this program's too (--help lists it).
flags.DEFINE_string("root", None, "Folder holding one workdir per member.")
flags.DEFINE_integer("parallel", 1, "Members run at once.")
flags.DEFINE_bool("dry_run", False, "Print the commands only.")
flags.DEFINE_list("evaluate", [], "After training, evaluate each member on these datasets (sr_jax.cli.evaluate).")
flags.DEFINE_list("eval_metrics", ["psnr", "ssim"], "Metrics of that evaluation (sr_jax.cli.evaluate --metrics).")
flags.DEFINE_string("eval_step", "best", "Checkpoint that evaluation scores: 'best', 'latest' or a step.")
flags.DEFINE_list("only", [], "Run only these members (their names as --dry_run lists them), in the sweep's order.")


STATUS_FILE = "launch.json"
MEMBER_LOCK = ".launch.lock"  # Held by the launcher running a member, for as long as it runs it.
ELSEWHERE = "running elsewhere"
_STOP = threading.Event()  # Set by Ctrl-C: no member starts after it.
GUARD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "member_guard.py")  # Stops a member with us.


def _status(workdir: str) -> dict:
  """A member's launch.json; {} when there is none, or when it is damaged (said on stderr: the member is then run
  again, which resumes from its checkpoints or skips nothing it finished, since the trainer skips a done run)."""
  path = os.path.join(workdir, STATUS_FILE)
  if not os.path.exists(path):
    return {}
  try:
    status = run_dir.read_json(path)
    if not isinstance(status, dict):
      raise ValueError("not a JSON object")
    return status
  except (OSError, ValueError) as e:
    print(f"launch: {path} is unreadable ({type(e).__name__}: {e}); treating the member as not finished",
          file=sys.stderr, flush=True)
    return {}


def _write_status(workdir: str, status: dict) -> None:
  """launch.json through a temporary name unique to this process and call (``atomic``): launchers on one root
  never collide, and a reader never sees half a file."""
  atomic.write_text(os.path.join(workdir, STATUS_FILE), json.dumps(status, indent=1))


def _stopped_early(workdir: str) -> str | None:
  """Why a training command that exited 0 did not finish its run (a SIGTERM or Ctrl-C: the trainer saves a
  checkpoint and exits 0), or None when its latest checkpoint is its last step."""
  try:
    total = run_dir.read_json(os.path.join(workdir, run_dir.CONFIG_FILE))["train"]["num_steps"]
  except (OSError, ValueError, KeyError, TypeError):
    return None  # A run that had nothing to do, or no config: the trainer's own exit status said enough.
  steps = checkpoint_io.saved_steps(os.path.join(workdir, "checkpoints"))
  if steps and steps[-1] < total:
    return f"stopped at step {steps[-1]}/{total} (checkpoint saved); run this command again to resume it"
  return None


def _elsewhere(workdir: str) -> str | None:
  """Who else is running this member now: another launcher, or a trainer (e.g. started by hand, or one whose
  launcher was killed and is still saving)."""
  return locks.holder(os.path.join(workdir, MEMBER_LOCK)) or run_dir.trainer_holding(workdir)


class Evaluation(NamedTuple):
  datasets: Sequence[str] = ()
  metrics: Sequence[str] = ("psnr", "ssim")
  step: str = "best"
  data_dir: str | None = None

  def command(self, workdir: str) -> list[str]:
    return [sys.executable, "-m", "sr_jax.cli.evaluate", f"--workdir={workdir}",
            f"--datasets={','.join(self.datasets)}", f"--metrics={','.join(self.metrics)}", f"--step={self.step}"] + (
                [f"--data_dir={self.data_dir}"] if self.data_dir else [])


def run_member(base: str, root: str, member: sweep_lib.Member, evaluation: Evaluation,
               needs: Sequence[concurrent.futures.Future] = (), index: int = 0, retrain: bool = False) -> dict:
  workdir = os.path.join(root, member.name)
  previous = _status(workdir)
  if retrain:  # Done, but without the files a later member reads (an archived record): trained again.
    previous = {}
  if previous.get("status") == "done":
    if (previous.get("label"), previous.get("index")) != (member.label, index):  # The sweep file was edited.
      _write_status(workdir, {**previous, "label": member.label, "index": index})
    return {"name": member.name, "status": "skipped (done)", "seconds": previous.get("seconds")}
  failed = [f.result()["name"] for f in needs if f.result()["status"] == "failed"]
  if failed:
    return {"name": member.name, "status": "failed", "error": f"not run: it needs {failed[0]}, which failed"}
  waiting = [f.result()["name"] for f in needs if f.result()["status"] in (ELSEWHERE, "waiting", "stopped")]
  if waiting:
    return {"name": member.name, "status": "waiting", "error": f"not run: it needs {waiting[0]}, which is not "
            "finished; run this command again when it is"}
  if _STOP.is_set():
    return {"name": member.name, "status": "not started", "error": "the launcher was interrupted"}
  os.makedirs(workdir, exist_ok=True)
  lock = locks.Lock(os.path.join(workdir, MEMBER_LOCK), "launcher")
  holder = lock.acquire() or run_dir.trainer_holding(workdir)
  if holder:
    lock.release()
    return {"name": member.name, "status": ELSEWHERE, "error": f"{holder}; not started a second time"}
  try:
    if not retrain and (now := _status(workdir)).get("status") == "done":  # Finished by another launcher just now.
      return {"name": member.name, "status": "skipped (done)", "seconds": now.get("seconds")}
    return _run_locked(base, root, member, evaluation, index, workdir, previous)
  finally:
    lock.release()


def _run_locked(base: str, root: str, member: sweep_lib.Member, evaluation: Evaluation, index: int, workdir: str,
                previous: dict) -> dict:
  commands = [sweep_lib.command_line(base, workdir, member.resolved(root), sys.executable)]
  if evaluation.datasets:
    commands.append(evaluation.command(workdir))
  status = {"name": member.name, "label": member.label, "index": index, "overrides": member.resolved(root),
            "base_config": base,
            "status": "running", "command": shlex.join(commands[0]), "seconds": previous.get("seconds", 0.0),
            "launcher": f"PID {os.getpid()} on host {socket.gethostname()}"}
  _write_status(workdir, status)
  # --data_dir reaches training too (its 'bench:' sources), through the variable configs read.
  env = {**os.environ, "SR_DATA_DIR": os.path.abspath(evaluation.data_dir)} if evaluation.data_dir else None
  start = time.time()
  state = "done"
  with open(os.path.join(workdir, "train.log"), "a") as log:
    for i, cmd in enumerate(commands):
      guarded = [sys.executable, GUARD, str(os.getpid()), *cmd]
      rc = subprocess.run(guarded, stdout=log, stderr=subprocess.STDOUT, cwd=os.getcwd(), env=env).returncode
      if rc:
        state = "failed"
        break
      if i == 0 and (stopped := _stopped_early(workdir)):  # A signal stopped the trainer: it saved, exited 0.
        state, status["error"] = "stopped", stopped
        break
  status.update(status=state, returncode=rc, seconds=round(status["seconds"] + time.time() - start, 1))
  _write_status(workdir, status)
  if rc:
    with open(os.path.join(workdir, "train.log")) as f:
      status["error"] = (f.read().strip().splitlines() or [""])[-1][:300]
  return status


def select(members: Sequence[sweep_lib.Member], only: Sequence[str], root: str) -> list[sweep_lib.Member]:
  """The members named in ``only`` (all when empty); refused: unknown names, and a member that reads another that
  is neither selected nor done in ``root``."""
  if not only:
    return list(members)
  names = [m.name for m in members]
  unknown = [n for n in only if n not in names]
  if unknown:
    raise ValueError(f"--only: no member named {', '.join(unknown)} in this sweep; its members: {', '.join(names)}")
  chosen = [m for m in members if m.name in only]
  for m in chosen:
    for need in m.needs():
      if need not in only and _status(os.path.join(root, need)).get("status") != "done":
        raise ValueError(f"--only: {m.name} reads {need}, which is not finished in {root}: add {need} to --only")
  return chosen


def missing_inputs(members: Sequence[sweep_lib.Member], root: str) -> set[str]:
  """Finished members (launch.json 'done') lacking a path that a member still to run reads from them, e.g. the
  checkpoint a fine-tune starts from, when the finished member's record was copied from an archive
  (experiments/archive_runs.py keeps no checkpoints): these train again."""
  stale = set()
  for m in members:
    if _status(os.path.join(root, m.name)).get("status") == "done":
      continue
    for key, path in m.resolved(root).items():
      if not (isinstance(m.overrides[key], str) and sweep_lib.ROOT in m.overrides[key]):
        continue
      for need in m.needs():
        workdir = os.path.join(root, need)
        target = os.path.join(workdir, "checkpoints") if path == workdir else path  # A workdir: its checkpoints.
        if target.startswith(workdir + os.sep) and not os.path.exists(target) and \
            _status(workdir).get("status") == "done":
          stale.add(need)
  return stale


def launch(sweep_file: str, root: str, *, parallel: int = 1, evaluation: Evaluation = Evaluation(),
           only: Sequence[str] = ()) -> list[dict]:
  base, every = sweep_lib.load(sweep_file)
  members = select(every, only, root)
  position = {m.name: i for i, m in enumerate(every)}  # Reports list members in the sweep file's order.
  retrain = missing_inputs(members, root)
  left_out = sorted(retrain - {m.name for m in members})
  if left_out:
    raise ValueError(f"--only: {', '.join(left_out)} must train again (its workdir lacks what a selected member "
                     f"reads, e.g. an archived record without checkpoints): add it to --only")
  os.makedirs(root, exist_ok=True)
  # A member waits for the members it reads; they come earlier in the file, so they are already submitted
  # (running or queued before it) and the pool cannot deadlock.
  futures: dict[str, concurrent.futures.Future] = {}
  with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
    for m in members:
      futures[m.name] = pool.submit(run_member, base, root, m, evaluation,
                                    [futures[n] for n in m.needs() if n in futures], position[m.name],
                                    m.name in retrain)
    try:
      return [f.result() for f in futures.values()]
    except KeyboardInterrupt:  # Ctrl-C reached the trainers too (one process group): they save and stop.
      _STOP.set()
      pool.shutdown(wait=True, cancel_futures=True)
      raise


def main(argv):
  if len(argv) != 2:
    raise app.UsageError("usage: python -m experiments.launch SWEEP_FILE --root=DIR")
  if not FLAGS.root:
    raise app.UsageError("--root is required")
  if FLAGS.dry_run:
    base, members = sweep_lib.load(argv[1])
    try:
      members = select(members, FLAGS.only, FLAGS.root)
    except ValueError as e:
      raise app.UsageError(str(e)) from e
    for m in members:
      print(shlex.join(sweep_lib.command_line(base, os.path.join(FLAGS.root, m.name), m.resolved(FLAGS.root))))
    return
  evaluation = Evaluation(FLAGS.evaluate, FLAGS.eval_metrics, FLAGS.eval_step, common_flags.DATA_DIR.value)
  try:
    results = launch(argv[1], FLAGS.root, parallel=FLAGS.parallel, evaluation=evaluation, only=FLAGS.only)
  except ValueError as e:
    raise app.UsageError(str(e)) from e
  print(f"{'member':40s} {'status':18s} seconds")
  for r in results:
    print(f"{r['name']:40s} {r['status']:18s} {r.get('seconds') or 0:7.1f}"
          + (f"  {r['error']}" if r.get("error") else ""))
  failed = [r for r in results if r["status"] == "failed"]
  later = [r for r in results if r["status"] in (ELSEWHERE, "waiting")]
  stopped = [r for r in results if r["status"] == "stopped"]
  print(f"{len(results)} members: {len(results) - len(failed) - len(later) - len(stopped)} ok, {len(failed)} failed"
        + (f", {len(stopped)} stopped by a signal (run this command again to resume)" if stopped else "")
        + (f", {len(later)} left to another launcher or trainer (running elsewhere, or waiting for one that is): "
           "run this command again once they finish" if later else ""))
  if failed:
    sys.exit(1)


if __name__ == "__main__":
  cli.run(main, interrupted="the members in progress saved a checkpoint and stopped, none was started after it; "
                            "run the same command to resume")
