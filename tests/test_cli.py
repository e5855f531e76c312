"""The CLI audit: every console script, every flag that takes a value, given a bad one, answers with one line
``<program>: error: ...`` naming what is wrong, and exit status 1; never a traceback or a usage block.

Each script runs all its cases in one process (tests/cli_driver.py), so the audit costs one start-up a script.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from programs import photos, REPO, run_module

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden"))
import rrdbnet_reference as ref  # noqa: E402


DRIVER = os.path.join(REPO, "tests", "cli_driver.py")


@pytest.fixture(scope="module")
def env(tmp_path_factory, trained_workdir):
  """Paths the cases refer to: a trained workdir, a plain file, weight files of every kind of wrong, a folder
  that cannot be written (a read-only tmpfs where root can mount one; None elsewhere)."""
  root = tmp_path_factory.mktemp("audit")
  shutil.copytree(trained_workdir, root / "run")
  (root / "afile").write_text("not a folder")
  (root / "in").mkdir()
  from PIL import Image
  Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(root / "in" / "a.png")
  sd = ref.state_dict("x4")
  np.savez(root / "other.npz", unrelated=np.zeros(3, np.float32))
  (root / "garbage.npz").write_bytes(b"PK\x03\x04 not really a zip")
  (root / "weights.txt").write_text("hello")
  np.savez(root / "shape.npz", **{**sd, "conv_hr.weight": np.zeros((16, 8, 3, 3), np.float32)})
  np.savez(root / "nan.npz", **{**sd, "conv_first.bias": np.full_like(sd["conv_first.bias"], np.nan)})
  np.savez(root / "good.npz", **sd)
  ro = root / "ro"
  ro.mkdir()
  mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)],
                           capture_output=True).returncode == 0
  yield {"root": root, "run": str(root / "run"), "ro": str(ro) if mounted else None}
  if mounted:
    subprocess.run(["umount", "-l", str(ro)], check=False)


def _audit(module, program, cases) -> tuple[int, list[str]]:
  """Runs ``cases`` [(args, expected text)] through ``module``'s console entry point; returns (cases run, the
  ones that did not answer with exit 1 and one line ``PROGRAM: error: ...`` holding the expected text)."""
  cases = [(args, text) for args, text in cases if args is not None]
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3",
             PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]))  # This tree's sr_jax.
  with tempfile.TemporaryDirectory(prefix=f"audit_{program}_") as folder:  # Gone with the test, even if it fails.
    tmp = os.path.join(folder, "cases")
    with open(tmp + ".in", "w") as f:
      json.dump([args for args, _ in cases], f)
    out = subprocess.run([sys.executable, DRIVER, module, program, tmp + ".in", tmp + ".out"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    with open(tmp + ".out") as f:
      results = json.load(f)
  bad = []
  for (args, text), r in zip(cases, results):
    lines = [l for l in r["stderr"].splitlines() if l.strip()]
    ok = (r["code"] == 1 and len(lines) == 1 and lines[0].startswith(f"{program}: error: ") and text in lines[0])
    if not ok:
      bad.append(f"{program} {' '.join(args)} -> exit {r['code']}, expected one line with {text!r}, got:\n"
                 + r["stderr"][-1500:])
  return len(results), bad


def test_sr_upscale(env):
  run, root = env["run"], env["root"]
  io = [f"--input={root / 'in'}", f"--output={root / 'up'}"]
  ran, bad = _audit("sr_jax.cli.upscale", "sr-upscale", [
      ([f"--workdir={run}", *io, "--batch_size=-1", "--tile=4"], "--batch_size"),
      ([f"--workdir={run}", *io, "--batch_size=0"], "--batch_size"),
      ([f"--workdir={run}", *io, "--tile=-1"], "--tile"),
      ([f"--workdir={run}", *io, "--tile=abc"], "--tile='abc': give 'auto' or a tile side"),
      ([f"--workdir={run}", *io, "--overlap=-20"], "--overlap"),
      ([f"--workdir={run}", *io, "--max_pixels=0"], "--max_pixels"),
      ([f"--workdir={run}", *io, "--quality=0"], "--quality"),
      ([f"--workdir={run}", *io, "--outscale=0"], "--outscale=0.0"),
      ([f"--workdir={run}", *io, "--outscale=x"], "--outscale"),
      ([f"--workdir={run}", *io, "--ext=gif"], "--ext=gif"),
      ([f"--workdir={run}", *io, "--suffix=../x"], "--suffix='../x': a name part"),
      ([f"--workdir={run}", *io, "--denoise_strength=0.5"], "--denoise_strength blends"),
      ([*io, "--pretrained=realesr_general_x4v3", "--denoise_strength=2"], "--denoise_strength"),
      ([*io, "-n", "RealESRGAN_x4plus", "--denoise_strength=0.5"], "applies to --pretrained=realesr_general_x4v3"),
      ([f"--workdir={run}", *io, "--step=99"], "no checkpoint at step 99"),
      ([f"--workdir={run}", *io, "--step=abc"], "--step=abc"),
      ([f"--workdir={root / 'missing'}", *io], "is not a training workdir"),
      ([f"--workdir={root / 'afile'}", *io], "is not a training workdir"),
      ([f"--checkpoint={run}/checkpoints/7", *io], "no checkpoint at step 7"),
      ([f"--checkpoint={root / 'missing'}/checkpoints/7", *io], "is not a training workdir"),
      ([f"--checkpoint={root / 'afile'}", *io], "is not a WORKDIR/checkpoints/STEP directory"),
      ([f"--workdir={run}", f"--input={root / 'missing'}", f"--output={root / 'up'}"], "does not exist"),
      ([f"--workdir={run}", f"--input={root / 'in'}", f"--output={root / 'afile'}"], "is a file, not a folder"),
      ([f"--workdir={run}", f"--input={root / 'in'}", f"--output={env['ro']}/up"], "Read-only file system")
      if env["ro"] else (None, None),
      ([*io], "exactly one of --workdir, --checkpoint and --pretrained"),
      ([f"--workdir={run}", *io, "extra"], "Unexpected arguments"),
      ([f"--workdir={run}", *io, "--nope=1"], "nope"),
      ([f"--workdir={run}", *io, "--bf16=maybe"], "--bf16"),
  ])
  assert ran >= 5 and not bad, "\n\n".join(bad)


def test_sr_evaluate(env):
  run, root = env["run"], env["root"]
  base = ["--baseline=bicubic", f"--datasets={root / 'in'}", f"--output_dir={root / 'ev'}"]
  ran, bad = _audit("sr_jax.cli.evaluate", "sr-evaluate", [
      (["--baseline=foo"], "--baseline"),
      ([f"--workdir={root / 'missing'}"], "is not a training workdir"),
      ([f"--workdir={run}", "--step=abc"], "--step=abc"),
      ([f"--workdir={run}", "--step=99"], "no checkpoint at step 99"),
      ([f"--workdir={run}", "--scales=4"], "scale mismatch"),
      (["--baseline=bicubic", f"--data_dir={root / 'missing'}", "--datasets=Set5"], "dataset 'Set5' not found"),
      (["--baseline=bicubic", "--datasets=nosuchset"], "dataset 'nosuchset' not found"),
      ([*base, "--scales=two"], "--scales=two"),
      ([*base, "--scales=0"], "--scales=0"),
      (["--baseline=bicubic", f"--datasets={root / 'in'}", f"--output_dir={root / 'afile'}"], "afile"),
      (["--baseline=bicubic", f"--datasets={root / 'in'}", f"--output_dir={env['ro']}/ev"],
       "Read-only file system") if env["ro"] else (None, None),
      ([*base, "--tile=-1"], "--tile"),
      ([*base, "--tile=big"], "--tile='big': give 'auto' or a tile side"),
      ([*base, "--overlap=-1"], "--overlap"),
      ([*base, "--heatmaps=some"], "--heatmaps"),
      ([*base, "--max_pixels=0"], "--max_pixels"),
      ([*base, "--metrics=psnr,foo"], "--metrics: unknown foo"),
      ([*base, "--metrics=lpips", f"--lpips_weights={root / 'missing.pth'},{root / 'x.pth'}"], "missing.pth"),
      ([*base, f"--tfds_data_dir={root / 'afile'}"], "--tfds_data_dir"),
      ([*base, f"--tfds_manual_dir={root / 'missing'}"], "--tfds_manual_dir"),
      ([*base, "--sheets=perhaps"], "--sheets"),
      (["--baseline=bicubic", f"--workdir={run}"], "exactly one of --workdir, --pretrained and --baseline"),
  ])
  assert ran >= 5 and not bad, "\n\n".join(bad)


def test_sr_train(env):
  root = env["root"]
  wd = f"--workdir={root / 'train'}"
  ran, bad = _audit("sr_jax.cli.train", "sr-train", [
      (["--config=missing.py", wd], "--config=missing.py: missing.py does not exist"),
      (["--config=quickstrat", wd], "did you mean quickstart"),
      (["--config=test", wd, "--config.train.batch_size=abc"], "batch_size"),
      (["--config=test", wd, "--config.nope=1"], "unknown config field"),
      (["--config=test", wd, "--config.data.patch_size=1"], "config.data.patch_size=1 is invalid"),
      (["--config=test", wd, "--config.model.scale=5"], "config.model.scale=5"),
      (["--config=test", f"--workdir={root / 'afile'}"], "afile"),
      (["--config=test", f"--workdir={env['ro']}/w"], "Read-only file system") if env["ro"] else (None, None),
      (["--config=test", wd, "--cpu_collectives=foo"], "--cpu_collectives"),
      (["--config=test", wd, "--num_processes=abc"], "--num_processes"),
      (["--config=test", wd, "--process_id=abc"], "--process_id"),
      (["--config=test"], "--workdir"),
  ])
  assert ran >= 5 and not bad, "\n\n".join(bad)


def test_sr_import_weights(env):
  root = env["root"]
  wd = f"--workdir={root / 'imp'}"
  ran, bad = _audit("sr_jax.cli.import_weights", "sr-import-weights", [
      ([f"--weights={root / 'missing.pth'}", wd], "missing.pth does not exist"),
      ([f"--weights={root / 'weights.txt'}", wd], "unsupported weights format '.txt'"),
      ([f"--weights={root / 'garbage.npz'}", wd], "cannot read"),
      ([f"--weights={root / 'other.npz'}", wd], "not a known weights layout"),
      ([f"--weights={root / 'shape.npz'}", wd], "shape (16, 8, 3, 3) in the file does not fit"),
      ([f"--weights={root / 'nan.npz'}", wd], "conv_first.bias: 16 of 16 values are NaN"),
      ([f"--weights={root / 'good.npz'}", f"--workdir={root / 'afile'}"], "is a file, not a folder"),
      ([f"--weights={root / 'good.npz'}", f"--workdir={env['run']}"], "already holds checkpoints"),
      ([f"--weights={root / 'good.npz'}", f"--workdir={env['ro']}/w"], "Read-only file system")
      if env["ro"] else (None, None),
      ([f"--weights={root / 'good.npz'}", wd, "--rgb_range=abc"], "--rgb_range"),
      ([f"--weights={root / 'good.npz'}", wd, "--rgb_range=0"], "--rgb_range"),
  ])
  assert ran >= 5 and not bad, "\n\n".join(bad)


def test_sr_fetch_data(env):
  root = env["root"]
  ran, bad = _audit("sr_jax.cli.fetch_data", "sr-fetch-data", [
      (["NoSuchSet", f"--to={root / 'sets'}"], "unknown set(s) NoSuchSet"),
      (["Set5", f"--to={root / 'sets'}", f"--mirror=file://{root / 'missing'}"], "download failed"),
      (["Set5", f"--to={root / 'afile'}"], "afile"),
      (["Set5", f"--to={root / 'sets'}", "--timeout=0"], "--timeout"),
      (["Set5", f"--to={root / 'sets'}", "--deadline=-1"], "--deadline"),
      (["Set5"], "--to"),
  ])
  assert ran >= 5 and not bad, "\n\n".join(bad)


def test_sr_pretrained(env):
  root = env["root"]
  wd = f"--workdir={root / 'pre'}"
  ran, bad = _audit("sr_jax.cli.pretrained", "sr-pretrained", [
      (["fetch", "nope", wd], "unknown pretrained model 'nope'"),
      (["fetch", "realesrgan_x4plus"], "fetch needs --workdir"),
      (["fetch", "realesrgan_x4plus", wd, f"--file={root / 'missing.pth'}"], "missing.pth does not exist"),
      (["fetch", "realesrgan_x4plus", wd, f"--url=file://{root / 'missing.pth'}"], "download failed"),
      (["fetch", "realesrgan_x4plus", f"--workdir={root / 'afile'}"], "is a file, not a folder"),
      (["fetch", "realesrgan_x4plus", wd, "--timeout=0"], "--timeout"),
      (["fetch", "realesrgan_x4plus", wd, "--deadline=abc"], "--deadline"),
      (["frobnicate"], "usage: python -m sr_jax.cli.pretrained list | fetch NAME"),
  ])
  assert ran >= 5 and not bad, "\n\n".join(bad)


def test_sr_export(env):
  run, root = env["run"], env["root"]
  out = f"--output={root / 'exp'}"
  ran, bad = _audit("sr_jax.cli.export", "sr-export", [
      ([f"--workdir={run}", out, "--format=foo"], "--format"),
      ([f"--workdir={root / 'missing'}", out], "is not a training workdir"),
      ([f"--workdir={run}", out, "--step=abc"], "--step=abc"),
      ([f"--workdir={run}", out, "--step=99"], "no checkpoint at step 99"),
      ([f"--workdir={run}", f"--output={root / 'afile'}"], "exists; give a new --output"),
      ([f"--workdir={run}", "--format=onnx", out], "ends in .onnx"),
      ([f"--workdir={run}", out, "--raw_weights=perhaps"], "--raw_weights"),
      ([f"--workdir={run}"], "--output"),
  ])
  assert ran >= 5 and not bad, "\n\n".join(bad)


def test_sr_interpolate(env):
  run, root = env["run"], env["root"]
  ab = [f"--a={run}", f"--b={run}"]
  ran, bad = _audit("sr_jax.cli.interpolate", "sr-interpolate", [
      ([*ab, "--alpha=1.5", f"--workdir={root / 'i1'}"], "--alpha=1.5: give values in [0, 1]"),
      ([*ab, "--alpha=x", f"--workdir={root / 'i1'}"], "--alpha=x: give numbers in [0, 1]"),
      ([*ab, "--alpha=0.2,0.2", f"--workdir={root / 'i1'}"], "repeats a value"),
      ([f"--a={root / 'missing'}", f"--b={run}", f"--workdir={root / 'i1'}"], "is not a training workdir"),
      ([*ab, f"--workdir={run}"], "already holds checkpoints"),
      ([*ab, f"--workdir={root / 'afile'}"], "is a file, not a folder"),
      ([*ab, f"--workdir={root / 'i1'}", "--metrics=psnr,foo"], "--metrics: unknown foo"),
      ([f"--a={run}", f"--workdir={root / 'i1'}"], "--b"),
      ([*ab, f"--workdir={root / 'i1'}", "extra"], "Unexpected arguments"),
  ])
  assert ran >= 5 and not bad, "\n\n".join(bad)
  assert not os.path.exists(root / "i1")  # Nothing written by a refused command.


def test_sr_score(env):
  root = env["root"]
  io = [f"--sr={root / 'in'}", f"--hr={root / 'in'}", f"--output_dir={root / 's1'}"]
  (root / "other").mkdir(exist_ok=True)
  shutil.copy(root / "in" / "a.png", root / "other" / "b.png")  # No name in common.
  ran, bad = _audit("sr_jax.cli.score", "sr-score", [
      ([*io, "--metrics=psnr,foo"], "--metrics: unknown foo"),
      ([*io, "--channels=lab"], "--channels"),
      ([*io, "--scale=-1"], "--scale"),
      ([*io, "--shave=x"], "--shave"),
      ([f"--sr={root / 'missing'}", f"--hr={root / 'in'}", f"--output_dir={root / 's1'}"], "is not a folder"),
      ([f"--sr={root / 'afile'}", f"--hr={root / 'in'}", f"--output_dir={root / 's1'}"], "is not a folder"),
      ([f"--sr={root / 'in'}", f"--hr={root / 'other'}", f"--output_dir={root / 's1'}"], "pairs with one of"),
      ([f"--sr={root / 'in'}", f"--hr={root / 'in'}"], "--output_dir"),
      ([*io, "extra"], "Unexpected arguments"),
  ])
  assert ran >= 5 and not bad, "\n\n".join(bad)
  assert not os.path.exists(root / "s1")  # Nothing written by a refused command.


SCRIPTS = {"sr-train": ["--config", "--workdir", "--distributed"],
           "sr-evaluate": ["--baseline", "--datasets", "--metrics"], "sr-upscale": ["--input", "--tile", "--outscale"],
           "sr-import-weights": ["--weights", "--rgb_range"],
           "sr-fetch-data": ["--to", "--mirror", "--deadline"], "sr-pretrained": ["--file", "--url", "--deadline"],
           "sr-export": ["--format", "--output", "--step"], "sr-interpolate": ["--a", "--b", "--alpha", "--evaluate"],
           "sr-score": ["--sr", "--hr", "--metrics", "--channels", "--shave"]}


def test_help_of_every_console_script_lists_its_own_flags():
  """absl lists the main module's flags, and a console script's main module is pip's wrapper: --help once printed
  only 'Try --helpfull' (exit 1). Each installed script is run as a user runs it."""
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
  procs = {}
  for name in SCRIPTS:
    path = os.path.join(os.path.dirname(sys.executable), name)
    if not os.path.exists(path):
      if os.environ.get("CI"):
        pytest.fail(f"console script {name} is not installed (pip install -e .)")
      pytest.skip(f"console script {name} not installed")
    procs[name] = subprocess.Popen([path, "--help"], env=env, cwd="/", stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
  for name, proc in procs.items():
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, (name, err[-2000:])
    assert "python -m sr_jax" in out and "Flags" in out, (name, out[:500])
    if name == "sr-train":  # The shipped configs by name.
      assert "Shipped configs (--config=NAME): default, finetune_realesr_animevideov3" in out, out[:1500]
    for flag in SCRIPTS[name] + ["--verbose"]:
      assert f"  {flag}" in out or f"  --[no]{flag[2:]}" in out, (name, flag, out[-3000:])


_CHATTER = ("orbax", "checkpoint_manager.py", "read_only=True", "Given directory is read only", "tracked_metric",
            "Event loop is closed", "Traceback")


_TF = ("oneDNN", "absl::InitializeLog", "tensorflow", "Unable to initialize backend")


def test_user_errors_are_one_line_without_traceback(tmp_path, trained_workdir):
  (tmp_path / "empty").mkdir()
  cases = [
      ("sr_jax.cli.train",
       ["--config=test", f"--workdir={tmp_path / 'w'}", f"--config.data.train={tmp_path / 'empty'}"],
       "is empty"),
      ("sr_jax.cli.train", ["--config=test", f"--workdir={tmp_path / 'w'}", "--config.model.scael=2"],
       'unknown config field \'scael\' Did you mean "scale"'),
      ("sr_jax.cli.upscale", [f"--workdir={trained_workdir}", f"--input={tmp_path / 'nope'}", f"--output={tmp_path}"],
       "does not exist"),
      ("sr_jax.cli.evaluate", [f"--workdir={tmp_path / 'nope'}"], "is not a training workdir"),
      ("sr_jax.cli.import_weights", [f"--weights={tmp_path / 'missing.pth'}", f"--workdir={tmp_path / 'imp'}"],
       "does not exist"),
  ]
  for module, args, message in cases:
    out = run_module(module, *args)
    errors = [l for l in out.stderr.splitlines() if ": error: " in l]
    assert out.returncode == 1 and len(errors) == 1 and message in errors[0], (module, out.stderr[-2000:])
    assert "Traceback" not in out.stderr and "\\n" not in errors[0], out.stderr[-2000:]
  out = run_module("sr_jax.cli.import_weights", f"--weights={tmp_path / 'w.npz'}", f"--workdir={tmp_path / 'imp'}",
                   "extra")
  assert out.returncode != 0 and "Unexpected arguments: ['extra']" in out.stderr
  out = run_module("sr_jax.cli.evaluate", "--baseline=bicubic", "--scales=two")
  assert out.returncode != 0 and "--scales=two" in out.stderr and "Traceback" not in out.stderr


def test_successful_import_and_upscale_print_no_library_chatter(tmp_path):
  np.savez(tmp_path / "w.npz", **ref.state_dict("x4"))
  res = run_module("sr_jax.cli.import_weights", f"--weights={tmp_path / 'w.npz'}", f"--workdir={tmp_path / 'imp'}")
  assert res.returncode == 0 and "Imported RRDBNET" in res.stdout
  assert not [l for l in res.stderr.splitlines() if any(c in l for c in _CHATTER)], res.stderr
  photos(tmp_path / "in", n=1, size=(16, 16))
  res = run_module("sr_jax.cli.upscale", f"--workdir={tmp_path / 'imp'}", f"--input={tmp_path / 'in'}",
                   f"--output={tmp_path / 'out'}")
  assert res.returncode == 0, res.stderr
  assert not [l for l in res.stderr.splitlines() if any(c in l for c in _CHATTER)], res.stderr
  photos(tmp_path / "set", n=1, size=(48, 48))
  res = run_module("sr_jax.cli.evaluate", f"--workdir={tmp_path / 'imp'}", f"--datasets={tmp_path / 'set'}",
                   f"--output_dir={tmp_path / 'ev'}")
  assert res.returncode == 0, res.stderr
  assert not [l for l in res.stderr.splitlines() if any(c in l for c in _CHATTER + _TF)], res.stderr
