"""Robustness round 3: poisoned caches, non-atomic outputs, readers racing the trainer, corrupt checkpoints, full
disks, FIFOs, sub-folders, and the one-line rule (the CLI audit is in test_cli_audit.py). Real files, processes,
signals, a loopback server and a small tmpfs (where this machine lets root mount one)."""

import contextlib
import http.server
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time

import jax
import numpy as np
import pytest
from PIL import Image

from sr_jax.core import atomic, download, errors
from sr_jax.data import benchmark_data, datasets
from sr_jax.hub import importers, model_zoo
from sr_jax.image import image_io
from sr_jax.inference import upscale_lib
from sr_jax.training import train
from sr_jax.workdir import checkpointing, run_dir

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden"))
import rrdbnet_reference as ref  # noqa: E402  (a small BasicSR-layout RRDBNet state dict)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")


def _cli(module, *args, timeout=600):
  return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=ENV, capture_output=True, text=True,
                        timeout=timeout)


def _photos(folder, n=2, size=(40, 48), seed=0):
  folder.mkdir(parents=True, exist_ok=True)
  rng = np.random.default_rng(seed)
  for i in range(n):
    Image.fromarray(rng.integers(0, 256, (*size, 3)).astype(np.uint8)).save(folder / f"img{i}.png")


def _dead_pid() -> int:
  proc = subprocess.Popen(["true"])
  proc.wait()
  return proc.pid


@pytest.fixture(scope="module")
def workdir(finished_run):
  return finished_run


@contextlib.contextmanager
def tmpfs(path, size="4m"):
  """A small tmpfs at ``path`` (root only; skips elsewhere)."""
  path.mkdir(parents=True, exist_ok=True)
  out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
  if out.returncode:
    pytest.skip(f"cannot mount a tmpfs here ({out.stderr.decode().strip()}); needs root")
  try:
    yield path
  finally:
    subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(folder, leave_kb):
  """Fills the filesystem of ``folder`` up to ``leave_kb`` free KiB."""
  st = os.statvfs(folder)
  free = st.f_bavail * st.f_frsize
  with open(folder / ".filler", "wb") as f:
    f.write(b"\0" * max(0, free - leave_kb * 1024))


# --- 1. Downloads ------------------------------------------------------------------------------------------------


class _Hostile(http.server.BaseHTTPRequestHandler):
  """/ok/F serves F; /trunc/F announces F's length and closes half-way; /html/F answers 200 with an error page;
  /drip/F sends a byte every 0.2 s."""
  root = ""

  def log_message(self, *args):
    pass

  def do_GET(self):
    mode, name = self.path.strip("/").split("/", 1)
    data = open(os.path.join(self.root, name), "rb").read()
    if mode == "html":
      data = b"<!DOCTYPE html><html><body>404 Not Found (the bucket moved)</body></html>"
    self.send_response(200)
    self.send_header("Content-Length", str(len(data)))
    self.end_headers()
    if mode == "trunc":
      self.wfile.write(data[:len(data) // 2])
      self.wfile.flush()
      self.close_connection = True
      return
    if mode == "drip":
      for i in range(min(len(data), 50)):
        self.wfile.write(data[i:i + 1])
        self.wfile.flush()
        time.sleep(0.2)
      return
    self.wfile.write(data)


@pytest.fixture
def hostile_server(tmp_path):
  root = tmp_path / "srv"
  root.mkdir()
  handler = type("H", (_Hostile,), {"root": str(root)})
  server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
  server.daemon_threads = True
  threading.Thread(target=server.serve_forever, daemon=True).start()
  yield root, f"http://127.0.0.1:{server.server_port}"
  server.shutdown()
  server.server_close()


@pytest.fixture
def zoo_entry(tmp_path, monkeypatch, hostile_server):
  """A registry entry without a published hash (as ISR's and Real-ESRGAN's are) for an .npz on the server."""
  root, base = hostile_server
  np.savez(root / "tiny_x4.npz", **{f"params_ema.{k}": v for k, v in ref.state_dict("x4").items()})
  monkeypatch.setenv("SR_JAX_CACHE", str(tmp_path / "cache"))
  monkeypatch.setitem(model_zoo.ZOO, "tiny", model_zoo.Entry(f"{base}/ok/tiny_x4.npz", "rrdbnet", 4, "", ""))
  return base


def test_truncated_download_and_html_error_page_are_never_cached(zoo_entry, tmp_path):
  cache = tmp_path / "cache"
  with pytest.raises(errors.DataError, match=r"closed the connection after [\d,]+ of [\d,]+ bytes .*not kept"):
    model_zoo.fetch("tiny", str(tmp_path / "a"), url=f"{zoo_entry}/trunc/tiny_x4.npz", progress=False)
  assert not os.listdir(cache) and not (tmp_path / "a").exists()
  with pytest.raises(errors.DataError, match="not a .npz file: it holds an HTML/XML page"):
    model_zoo.fetch("tiny", str(tmp_path / "a"), url=f"{zoo_entry}/html/tiny_x4.npz", progress=False)
  assert not os.listdir(cache)
  fields, _ = model_zoo.fetch("tiny", str(tmp_path / "a"), progress=False)  # The real file is then fetched.
  assert fields["scale"] == 4 and os.listdir(cache) == ["tiny_x4.npz"]


def test_a_damaged_cached_file_names_itself_and_how_to_clear_it(zoo_entry, tmp_path):
  cached = tmp_path / "cache" / "tiny_x4.npz"
  model_zoo.fetch("tiny", str(tmp_path / "a"), progress=False)
  cached.write_bytes(cached.read_bytes()[:1000])  # Damaged after the fact (a disk error, a hand copy).
  with pytest.raises(errors.DataError, match=f"the cached file {cached} cannot be used .*delete it \\(rm {cached}\\)"):
    model_zoo.fetch("tiny", str(tmp_path / "b"), progress=False)


def test_a_dripping_server_meets_the_total_deadline(zoo_entry, tmp_path):
  start = time.monotonic()
  with pytest.raises(errors.DataError, match="not complete after 1 s"):
    model_zoo.fetch("tiny", str(tmp_path / "a"), url=f"{zoo_entry}/drip/tiny_x4.npz", timeout=5, deadline=1,
                    progress=False)
  assert time.monotonic() - start < 5 and not os.listdir(tmp_path / "cache")


def test_partial_files_of_killed_downloads_are_cleaned_on_the_next_run(zoo_entry, tmp_path, data_dir):
  pid = _dead_pid()
  cache = tmp_path / "cache"
  cache.mkdir()
  for name in (f"tiny_x4.npz.part{pid}", f".tiny_x4.npz.tmp{pid}-0123abcd"):
    (cache / name).write_bytes(b"half")
  (cache / f"mine.part{pid}").write_bytes(b"a user's file")  # Not a download's name: kept.
  model_zoo.fetch("tiny", str(tmp_path / "a"), progress=False)
  assert sorted(os.listdir(cache)) == [f"mine.part{pid}", "tiny_x4.npz"]
  # fetch_data: a benchmark folder where a killed fetch left a part file, which evaluate would count as an image.
  sets = tmp_path / "sets" / "Set5"
  sets.mkdir(parents=True)
  (sets / f"baby.png.part{pid}").write_bytes(b"half")
  mirror = "file://" + os.path.abspath(data_dir)
  benchmark_data.fetch(["Set5"], str(tmp_path / "sets"), mirror=mirror, progress=lambda _: None)
  assert sorted(os.listdir(sets)) == sorted(f for f, _, _ in benchmark_data.manifest()["Set5"])


def test_download_never_touches_the_destination_on_failure(tmp_path, hostile_server):
  root, base = hostile_server
  (root / "f.bin").write_bytes(b"x" * 1000)
  dst = tmp_path / "f.bin"
  dst.write_bytes(b"good")
  with pytest.raises(errors.DataError, match="truncated"):
    download.download(f"{base}/trunc/f.bin", str(dst))
  assert dst.read_bytes() == b"good" and sorted(os.listdir(tmp_path)) == ["f.bin", "srv"]


# --- 2. Outputs are written atomically ---------------------------------------------------------------------------


def test_upscale_replaces_a_symlink_at_the_destination_and_never_writes_through_it(workdir, tmp_path):
  _photos(tmp_path / "in", n=1)
  out = tmp_path / "out"
  out.mkdir()
  precious = tmp_path / "precious.txt"
  precious.write_text("keep me")
  os.symlink(precious, out / "img0_x2.png")
  res = _cli("sr_jax.cli.upscale", f"--workdir={workdir}", f"--input={tmp_path / 'in'}", f"--output={out}")
  assert res.returncode == 0, res.stderr[-2000:]
  assert precious.read_text() == "keep me"
  assert not os.path.islink(out / "img0_x2.png") and Image.open(out / "img0_x2.png").size == (96, 80)
  assert sorted(os.listdir(out)) == ["img0_x2.png"]  # No temporary file left.


def test_an_interrupted_write_leaves_the_previous_file_whole(tmp_path, monkeypatch):
  path = tmp_path / "a_x2.png"
  good = np.full((8, 8, 3), 7, np.uint8)
  image_io.save_image(str(path), good)
  before = path.read_bytes()

  def interrupted_save(self, fp, *args, **kwargs):
    fp.write(b"\x89PNG half an image")
    raise KeyboardInterrupt  # What Ctrl-C (SIGINT) raises in the middle of Pillow's write.

  monkeypatch.setattr(Image.Image, "save", interrupted_save)
  with pytest.raises(KeyboardInterrupt):
    image_io.save_image(str(path), np.zeros((8, 8, 3), np.uint8))
  assert path.read_bytes() == before and os.listdir(tmp_path) == ["a_x2.png"]


def test_a_full_disk_keeps_good_outputs_and_says_so(workdir, tmp_path):
  _photos(tmp_path / "in", n=2, size=(60, 64))
  with tmpfs(tmp_path / "disk", size="2m") as disk:
    out = disk / "out"
    res = _cli("sr_jax.cli.upscale", f"--workdir={workdir}", f"--input={tmp_path / 'in'}", f"--output={out}")
    assert res.returncode == 0, res.stderr[-2000:]
    good = {n: (out / n).read_bytes() for n in os.listdir(out)}
    _fill(disk, leave_kb=8)
    res = _cli("sr_jax.cli.upscale", f"--workdir={workdir}", f"--input={tmp_path / 'in'}", f"--output={out}")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "No space left on device (the file already there is kept as it was)" in res.stdout + res.stderr
    assert {n: (out / n).read_bytes() for n in os.listdir(out)} == good  # Nothing lost, nothing half-written.


def test_evaluation_results_are_written_atomically(tmp_path, monkeypatch):
  from sr_jax.evaluation import eval_report
  _photos(tmp_path / "set", n=2, size=(48, 48))
  eval_report.evaluate({2: eval_report.bicubic_upscale(2)}, [str(tmp_path / "set")], "", str(tmp_path / "ev"),
                       label="bicubic", heatmaps="none", sheets=False)
  before = (tmp_path / "ev" / "table.md").read_bytes()
  real = atomic.replace

  @contextlib.contextmanager
  def dying(path):
    with real(path) as f:
      f.write(b"| half")
      raise OSError(28, "No space left on device")
      yield f

  monkeypatch.setattr(atomic, "replace", dying)
  with pytest.raises(OSError):
    eval_report.evaluate({2: eval_report.bicubic_upscale(2)}, [str(tmp_path / "set")], "", str(tmp_path / "ev"),
                         label="bicubic", heatmaps="none", sheets=False)
  assert (tmp_path / "ev" / "table.md").read_bytes() == before


# --- 3. No silent wrong output -----------------------------------------------------------------------------------


def test_planned_names_are_unique_against_each_other_and_every_input_is_written(workdir, tmp_path):
  src = tmp_path / "in"
  src.mkdir()
  img = np.random.default_rng(1).integers(0, 256, (24, 20, 3)).astype(np.uint8)
  for name in ("photo.png", "photo.jpg", "photo_png.png", "Photo.PNG"):
    Image.fromarray(img).save(src / name, format="PNG" if name.lower().endswith("png") else "JPEG")
  files = sorted(str(p) for p in src.iterdir())
  jobs = upscale_lib.plan(files, str(src), str(tmp_path / "out"), 2, ".png")
  dsts = [os.path.basename(j.dst) for j in jobs]
  assert len({d.lower() for d in dsts}) == 4, dsts
  assert "photo_png_x2.png" in dsts  # photo_png.png keeps its plain name; the colliding ones step aside.
  res = _cli("sr_jax.cli.upscale", f"--workdir={workdir}", f"--input={src}", f"--output={tmp_path / 'out'}",
             "--ext=png")
  assert res.returncode == 0 and "4 image(s) upscaled" in res.stdout, res.stderr[-2000:]
  assert len(os.listdir(tmp_path / "out")) == 4


def test_non_finite_weights_are_refused_at_import(tmp_path):
  sd = ref.state_dict("x4")
  sd["conv_last.weight"] = sd["conv_last.weight"].copy()
  sd["conv_last.weight"][0, 0, 0, 0] = np.nan
  np.savez(tmp_path / "nan.npz", **sd)
  with pytest.raises(importers.common.LayoutError, match="conv_last.weight: 1 of .* NaN or infinite"):
    importers.import_to_workdir(str(tmp_path / "nan.npz"), str(tmp_path / "w"))
  assert not (tmp_path / "w").exists()


def test_a_wrong_tensor_is_named_with_the_shape_the_file_holds(tmp_path):
  sd = ref.state_dict("x4")
  sd["conv_hr.weight"] = np.zeros((16, 8, 3, 3), np.float32)  # OIHW; the model needs (16, 16, 3, 3).
  np.savez(tmp_path / "bad.npz", **sd)
  with pytest.raises(importers.common.LayoutError,
                     match=r"conv_hr.weight: shape \(16, 8, 3, 3\) in the file does not fit conv_hr/kernel, which "
                           r"needs \(16, 16, 3, 3\)"):
    importers.import_to_workdir(str(tmp_path / "bad.npz"), str(tmp_path / "w"))


# --- 4. Readers racing a live trainer's pruning ------------------------------------------------------------------


def test_readers_never_fail_while_a_trainer_prunes(tmp_path):
  wd = tmp_path / "live"
  trainer = subprocess.Popen(
      [sys.executable, "-m", "sr_jax.cli.train", "--config=test", f"--workdir={wd}", "--config.train.num_steps=4000",
       "--config.checkpoint_every=2", "--config.keep_checkpoints=1", "--config.eval_every=4000",
       "--config.log_every=2", "--config.train.num_devices=1"], cwd=REPO, env=ENV, stdout=subprocess.DEVNULL,
      stderr=subprocess.PIPE, text=True)
  try:
    deadline = time.time() + 300
    while time.time() < deadline and not checkpointing.saved_steps(str(wd / "checkpoints")):
      time.sleep(0.1)
    steps = set()
    for _ in range(25):
      steps.add(run_dir.load_run(str(wd), "latest").step)  # Never raises, however the pruning falls.
    _photos(tmp_path / "in", n=1)
    for i in range(3):
      res = _cli("sr_jax.cli.upscale", f"--workdir={wd}", "--step=latest", f"--input={tmp_path / 'in'}",
                 f"--output={tmp_path / f'out{i}'}")
      assert res.returncode == 0, res.stderr[-2000:]
      assert "Traceback" not in res.stderr and "Event loop is closed" not in res.stderr, res.stderr[-2000:]
    assert trainer.poll() is None, trainer.stderr.read()[-2000:]  # Still training: the race was real.
    assert len(steps) > 1, steps
  finally:
    trainer.terminate()
    trainer.wait(timeout=120)


# --- 5. Corrupt checkpoints --------------------------------------------------------------------------------------


def _corrupt(src, dst, how):
  shutil.copytree(src, dst)
  state = os.path.join(dst, "checkpoints", "6", "state")
  manifest = os.path.join(state, "manifest.ocdbt")
  data = open(manifest, "rb").read()
  if how == "truncated":
    open(manifest, "wb").write(data[:len(data) // 2])
  elif how == "random":
    open(manifest, "wb").write(np.random.default_rng(0).bytes(len(data)))
  elif how == "empty":
    open(manifest, "wb").close()
  elif how == "metrics":
    open(os.path.join(dst, "checkpoints", "6", "metrics", "metrics"), "w").write("{garbage")
  return str(dst)


@pytest.mark.parametrize("how", ["truncated", "random", "empty"])
def test_an_unreadable_latest_checkpoint_is_named_and_readers_fall_back(workdir, tmp_path, how, caplog):
  wd = _corrupt(workdir, tmp_path / "wd", how)
  with caplog.at_level(logging.WARNING):
    assert run_dir.load_run(wd, "latest").step == 3
  assert "checkpoints/6 is unreadable: Error decoding manifest" in caplog.text
  assert "Using checkpoint 3 instead of unreadable 6" in caplog.text
  with pytest.raises(checkpointing.CheckpointUnreadableError, match="checkpoints/6 is unreadable: Error decoding"):
    run_dir.load_run(wd, "6")
  assert "mismatch" not in caplog.text


def test_unreadable_checkpoint_through_the_clis_and_resume(workdir, tmp_path):
  wd = _corrupt(workdir, tmp_path / "wd", "truncated")
  _photos(tmp_path / "in", n=1)
  res = _cli("sr_jax.cli.upscale", f"--workdir={wd}", "--step=latest", f"--input={tmp_path / 'in'}",
             f"--output={tmp_path / 'out'}")
  assert res.returncode == 0 and "(checkpoint step 3)" in res.stdout, res.stderr[-2000:]
  assert "Using checkpoint 3 instead of unreadable 6" in res.stderr and "Traceback" not in res.stderr
  res = _cli("sr_jax.cli.evaluate", f"--workdir={wd}", "--step=6", "--datasets=x")
  errs = [l for l in res.stderr.splitlines() if l.strip()]
  assert res.returncode == 1 and len(errs) == 1 and "checkpoints/6 is unreadable" in errs[0], res.stderr[-2000:]
  # Training resumes from the newest readable step; the unreadable one is moved aside, never deleted.
  from sr_jax.configs import test as test_cfg
  config = test_cfg.get_config()
  config.train.update(num_devices=1, num_steps=9)
  train.train_and_evaluate(config, wd)
  assert checkpointing.saved_steps(os.path.join(wd, "checkpoints")) == [3, 6, 9]
  assert os.listdir(os.path.join(wd, "unreadable_checkpoints")) == ["6"]
  # The re-trained step 6 equals the original (resumed from 3 exactly as the first run went on from 3).
  a = jax.tree.leaves(run_dir.load_run(workdir, "6").params)
  b = jax.tree.leaves(run_dir.load_run(wd, "6").params)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_garbage_metrics_keep_the_checkpoint_usable_and_out_of_best(workdir, tmp_path, caplog):
  wd = _corrupt(workdir, tmp_path / "wd", "metrics")
  with caplog.at_level(logging.WARNING):
    assert run_dir.load_run(wd, "latest").step == 6
  assert "checkpoint 6: its metrics file is unreadable" in caplog.text
  best = run_dir.load_run(wd, "best").step
  assert best == 3  # The only step whose validation can still be read.


# --- 6. A real full disk -----------------------------------------------------------------------------------------


def test_training_on_a_full_disk_says_so_once_and_resumes_after_space_is_freed(tmp_path):
  args = ["--config=test", "--config.train.num_steps=12", "--config.checkpoint_every=2", "--config.log_every=2",
          "--config.keep_checkpoints=2", "--config.train.num_devices=1"]
  with tmpfs(tmp_path / "disk", size="4m") as disk:
    _fill(disk, leave_kb=500)  # Room for the first checkpoint (~300 KB), not the second.
    res = _cli("sr_jax.cli.train", f"--workdir={disk / 'w'}", *args)
    lines = [l for l in res.stderr.splitlines() if l.strip() and not l.startswith(("I", "W"))]
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr[-3000:]
    # Whichever writer meets the full disk first says so (a checkpoint save, or the summaries/validation log;
    # which one depends on timing): one line naming the intact checkpoint either way.
    said = ("is full; training stopped. Checkpoints intact: [2]",
            "the disk is full. Earlier checkpoints are intact ([2])")
    assert len(lines) == 1 and any(s in lines[0] for s in said), res.stderr[-3000:]
    os.remove(disk / ".filler")
    res = _cli("sr_jax.cli.train", f"--workdir={disk / 'w'}", *args)
    assert res.returncode == 0 and "Resuming" in res.stderr, res.stderr[-3000:]
    assert checkpointing.saved_steps(str(disk / "w" / "checkpoints"))[-1] == 12


def test_an_import_on_a_full_disk_leaves_nothing_and_the_retry_works(tmp_path):
  np.savez(tmp_path / "w.npz", **ref.state_dict("x4"))
  with tmpfs(tmp_path / "disk", size="2m") as disk:
    _fill(disk, leave_kb=60)
    res = _cli("sr_jax.cli.import_weights", f"--weights={tmp_path / 'w.npz'}", f"--workdir={disk / 'imp'}")
    errs = [l for l in res.stderr.splitlines() if l.strip()]
    assert res.returncode == 1 and len(errs) == 1 and "the disk is full. Nothing was written" in errs[0], res.stderr
    assert not (disk / "imp").exists()
    os.remove(disk / ".filler")
    res = _cli("sr_jax.cli.import_weights", f"--weights={tmp_path / 'w.npz'}", f"--workdir={disk / 'imp'}")
    assert res.returncode == 0, res.stderr[-2000:]


def test_orbax_reporting_a_full_disk_as_a_value_error_is_a_save_error(test_config, tmp_path, monkeypatch):
  """The same without root: Orbax's own exception type and text, injected where it raises it."""
  import orbax.checkpoint as ocp

  def full(self, step, *args, **kwargs):
    raise ValueError('RESOURCE_EXHAUSTED: Error writing local file "x/_sharding": Failed to write 18045 bytes to '
                     "file 13: No space left on device [os_error_code='28']")

  monkeypatch.setattr(ocp.CheckpointManager, "save", full)
  test_config.train.update(num_devices=1, num_steps=3)
  with pytest.raises(checkpointing.CheckpointSaveError, match="failed: the disk is full. Earlier checkpoints are "
                                                              "intact \\(none\\)"):
    train.train_and_evaluate(test_config, str(tmp_path))


# --- 7, 8. FIFOs and sub-folders in image folders ----------------------------------------------------------------


def test_a_fifo_in_an_image_folder_is_skipped_by_every_reader(workdir, tmp_path):
  _photos(tmp_path / "set", n=2, size=(48, 48))
  os.mkfifo(tmp_path / "set" / "pipe.png")
  images = datasets.load_source(str(tmp_path / "set"))
  assert len(images) == 2 and "pipe.png: a FIFO (named pipe), not an image file" in images.skipped[0]
  res = _cli("sr_jax.cli.evaluate", "--baseline=bicubic", f"--datasets={tmp_path / 'set'}", "--scales=2",
             f"--output_dir={tmp_path / 'ev'}", timeout=120)
  assert res.returncode == 0, res.stderr[-2000:]
  summary = json.loads((tmp_path / "ev" / "summary.json").read_text())["set"]["x2"]
  assert summary["num_images"] == 2 and summary["skipped"] == 1
  res = _cli("sr_jax.cli.upscale", f"--workdir={workdir}", f"--input={tmp_path / 'set'}", f"--output={tmp_path / 'o'}",
             timeout=120)
  assert res.returncode == 1 and "2 image(s) upscaled" in res.stdout and "pipe.png: a FIFO" in res.stdout
  res = _cli("sr_jax.cli.upscale", f"--workdir={workdir}", f"--input={tmp_path / 'set' / 'pipe.png'}",
             f"--output={tmp_path / 'o'}", timeout=120)
  assert res.returncode == 1 and "pipe.png: a FIFO" in res.stdout


def test_evaluate_writes_heatmaps_of_images_in_sub_folders(tmp_path):
  _photos(tmp_path / "set", n=1, size=(48, 48))
  _photos(tmp_path / "set" / "a_subfolder", n=1, size=(48, 48), seed=3)
  for mode in ("all", "worst"):
    res = _cli("sr_jax.cli.evaluate", "--baseline=bicubic", f"--datasets={tmp_path / 'set'}", "--scales=2",
               f"--output_dir={tmp_path / mode}", f"--heatmaps={mode}")
    assert res.returncode == 0, res.stderr[-2000:]
    assert (tmp_path / mode / "heatmaps" / "set_x2" / "a_subfolder" / "img0.png").is_file()
    assert json.loads((tmp_path / mode / "summary.json").read_text())["set"]["x2"]["num_images"] == 2


# --- 10, 11. Quiet success; small ones ---------------------------------------------------------------------------

_CHATTER = ("orbax", "checkpoint_manager.py", "read_only=True", "Given directory is read only", "tracked_metric",
            "Event loop is closed", "Traceback")
_TF = ("oneDNN", "absl::InitializeLog", "tensorflow", "Unable to initialize backend")


def test_successful_import_and_upscale_print_no_library_chatter(tmp_path):
  np.savez(tmp_path / "w.npz", **ref.state_dict("x4"))
  res = _cli("sr_jax.cli.import_weights", f"--weights={tmp_path / 'w.npz'}", f"--workdir={tmp_path / 'imp'}")
  assert res.returncode == 0 and "Imported RRDBNET" in res.stdout
  assert not [l for l in res.stderr.splitlines() if any(c in l for c in _CHATTER)], res.stderr
  _photos(tmp_path / "in", n=1, size=(16, 16))
  res = _cli("sr_jax.cli.upscale", f"--workdir={tmp_path / 'imp'}", f"--input={tmp_path / 'in'}",
             f"--output={tmp_path / 'out'}")
  assert res.returncode == 0, res.stderr
  assert not [l for l in res.stderr.splitlines() if any(c in l for c in _CHATTER)], res.stderr
  _photos(tmp_path / "set", n=1, size=(48, 48))
  res = _cli("sr_jax.cli.evaluate", f"--workdir={tmp_path / 'imp'}", f"--datasets={tmp_path / 'set'}",
             f"--output_dir={tmp_path / 'ev'}")
  assert res.returncode == 0, res.stderr
  assert not [l for l in res.stderr.splitlines() if any(c in l for c in _CHATTER + _TF)], res.stderr


def test_an_animated_gif_or_icon_is_upscaled_as_its_first_frame_and_says_so(tmp_path, caplog):
  frames = [Image.fromarray(np.full((32, 32, 3), v, np.uint8)) for v in (0, 128, 255)]
  frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
  frames[1].save(tmp_path / "icon.ico", sizes=[(16, 16), (32, 32)])
  with caplog.at_level(logging.WARNING):
    gif = image_io.decode(str(tmp_path / "anim.gif"))
    ico = image_io.decode(str(tmp_path / "icon.ico"))
  assert "anim.gif: holds 3 frames (animated or multi-page GIF); only the first was used" in gif.note
  assert "icon.ico: holds 2 icon sizes; only the largest (32x32) was used" in ico.note
  assert gif.note in caplog.text and ico.note in caplog.text


def test_training_patches_below_8_pixels_are_refused(test_config):
  from sr_jax.training import config_lib
  test_config.data.patch_size = 1
  with pytest.raises(config_lib.ConfigError, match="config.data.patch_size=1 is invalid; accepted: an integer >= 8"):
    config_lib.validate(test_config)
