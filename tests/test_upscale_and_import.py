import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from PIL import Image

from sr_jax.core import weights_io
from sr_jax.hub import importers
from sr_jax.hub.importers import edsr_rdn
from sr_jax.models import registry
from sr_jax.training import train_workdir
from sr_jax.workdir import run_dir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _upscale(*args):
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
  return subprocess.run([sys.executable, "-m", "sr_jax.cli.upscale", *args], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=300)


def test_upscale_cli_handles_every_input_mode(trained_workdir, tmp_path):
  src = tmp_path / "in"
  src.mkdir()
  rng = np.random.default_rng(0)
  rgb = rng.integers(0, 256, (21, 30, 3)).astype(np.uint8)
  Image.fromarray(rgb).save(src / "rgb.png")
  Image.fromarray(rgb).save(src / "photo.jpg")
  Image.fromarray(rgb[..., 0]).save(src / "gray.png")
  Image.fromarray(np.dstack([rgb, np.full((21, 30), 128, np.uint8)])).save(src / "rgba.png")
  Image.fromarray(rgb).convert("P").save(src / "palette.png")
  Image.fromarray((rgb[..., 1].astype(np.uint16) * 257)).save(src / "deep.tif")
  rotated = Image.fromarray(rgb)
  exif = rotated.getexif()
  exif[0x0112] = 6  # Rotate 90 CW on display.
  rotated.save(src / "exif.jpg", exif=exif)
  (src / "broken.png").write_bytes(b"not an image")
  before = {p.name: p.read_bytes() for p in src.iterdir()}
  out = _upscale(f"--workdir={trained_workdir}", f"--input={src}", f"--output={tmp_path / 'out'}", "--tile=8")
  assert out.returncode == 1, out.stderr[-2000:]  # One file failed, the rest were written.
  assert "broken.png" in out.stdout and "7 image(s) upscaled x2" in out.stdout
  res = {p.name: Image.open(p) for p in (tmp_path / "out").iterdir()}
  assert res["rgb_x2.png"].size == (60, 42) and res["rgb_x2.png"].mode == "RGB"
  assert res["gray_x2.png"].mode == "L"
  assert res["rgba_x2.png"].mode == "RGBA"
  assert np.asarray(res["rgba_x2.png"])[..., 3].min() >= 127
  assert res["palette_x2.png"].mode == "RGB" and res["deep_x2.tif"].size == (60, 42)
  assert res["exif_x2.jpg"].size == (42, 60)  # Orientation applied: portrait.
  assert {p.name: p.read_bytes() for p in src.iterdir()} == before  # Inputs untouched.


def test_upscale_never_overwrites_inputs_and_refuses_bombs(trained_workdir, tmp_path):
  img = tmp_path / "a_x2.png"
  Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "a.png")
  Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(img)
  original = img.read_bytes()
  out = _upscale(f"--workdir={trained_workdir}", f"--input={tmp_path}", f"--output={tmp_path}")
  assert out.returncode == 1 and "would overwrite an input" in out.stdout
  assert img.read_bytes() == original
  out = _upscale(f"--workdir={trained_workdir}", f"--input={tmp_path / 'a.png'}", f"--output={tmp_path / 'o'}",
                 "--max_pixels=100")
  assert out.returncode == 1 and "decompression-bomb" in out.stdout


def test_outscale_resizes_the_model_output_to_any_final_scale(trained_workdir, tmp_path):
  rgb = np.random.default_rng(1).integers(0, 256, (21, 30, 3)).astype(np.uint8)
  Image.fromarray(rgb).save(tmp_path / "a.png")
  Image.fromarray(np.dstack([rgb, np.full((21, 30), 200, np.uint8)])).save(tmp_path / "b.png")
  out = _upscale(f"--workdir={trained_workdir}", f"--input={tmp_path}", f"--output={tmp_path / 'o'}",
                 "--outscale=3.5")
  assert out.returncode == 0 and "2 image(s) upscaled x3.5" in out.stdout, out.stderr[-2000:]
  a, b = Image.open(tmp_path / "o" / "a_x3.5.png"), Image.open(tmp_path / "o" / "b_x3.5.png")
  assert a.size == b.size == (105, 74) and b.mode == "RGBA"  # round(30 * 3.5), round(21 * 3.5); alpha kept.
  # The model's x2 output, then MATLAB bicubic to the final size.
  from sr_jax.image import imresize
  from sr_jax.inference import upscale_lib, upscaler
  run = run_dir.load_run(trained_workdir, "best")
  sr = upscaler.upscale_image(upscaler.Upscaler(run.graphdef, run.params, run.config.model), rgb)
  expected = upscale_lib.rescale(sr, (74, 105))
  assert np.abs(np.asarray(a).astype(int) - expected).max() <= 1
  assert imresize.to_uint8(imresize.imresize(sr / 255.0, output_shape=(74, 105))).shape == (74, 105, 3)
  out = _upscale(f"--workdir={trained_workdir}", f"--input={tmp_path}", f"--output={tmp_path / 'o2'}",
                 "--outscale=0")
  assert out.returncode != 0 and "--outscale=0.0: give a final scale in (0, 16]" in out.stderr


def to_authors_state_dict(params, arch, rgb_range):
  """sr_jax RDN parameters in the authors' (EDSR-PyTorch) naming and layout, written independently of the
  importer: OIHW kernels, biases in [0, 255] units."""
  names = {("sfe1",): "SFENet1", ("sfe2",): "SFENet2", ("gff1",): "GFF.0", ("gff2",): "GFF.1"}
  for i in range(arch["num_blocks"]):
    names[("blocks", i, "lff")] = f"RDBs.{i}.LFF"
    names.update({("blocks", i, "convs", j): f"RDBs.{i}.convs.{j}.conv.0" for j in range(arch["num_layers"])})
  stages = 2 if arch["scale"] == 4 else 1
  names.update({("up", k): f"UPNet.{2 * k}" for k in range(stages)})
  names[("out",)] = f"UPNet.{2 * stages}"
  sd = {}
  for path, var in nnx.to_flat_state(params):
    value = np.asarray(var[...])
    leaf = "weight" if path[-1] == "kernel" else "bias"
    sd[f"{names[tuple(path[:-1])]}.{leaf}"] = value.transpose(3, 2, 0, 1) if leaf == "weight" else value * rgb_range
  return sd


def _random_rdn(scale, seed=0):
  model = registry.build_generator(_model_cfg(scale), seed=seed)
  # Non-zero biases, so the rgb_range rescaling is exercised.
  graphdef, params = nnx.split(model)
  leaves, treedef = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.key(seed), len(leaves))
  leaves = [l + 0.01 * jax.random.normal(k, l.shape) for l, k in zip(leaves, keys)]
  return graphdef, jax.tree.unflatten(treedef, leaves)


def _model_cfg(scale):
  from sr_jax.configs import test as test_cfg
  cfg = test_cfg.get_config().model
  cfg.update(scale=scale, num_blocks=2, num_layers=3, growth=4, features=6)
  return cfg


@pytest.mark.parametrize("scale,fmt", [(2, ".npz"), (3, ".safetensors"), (4, ".npz")])
def test_import_round_trip_in_authors_naming(tmp_path, scale, fmt):
  graphdef, params = _random_rdn(scale)
  arch = dict(_model_cfg(scale))
  arch = {k: arch[k] for k in ("scale", "num_blocks", "num_layers", "growth", "features", "channels")}
  sd = to_authors_state_dict(params, arch, rgb_range=255.0)
  assert "RDBs.1.convs.2.conv.0.weight" in sd and "GFF.1.bias" in sd and sd["SFENet1.weight"].shape == (6, 3, 3, 3)
  assert ("UPNet.4.weight" in sd) == (scale == 4)
  path = str(tmp_path / f"rdn{fmt}")
  if fmt == ".npz":
    np.savez(path, **{f"module.{k}": v for k, v in sd.items()})  # DataParallel prefix is stripped.
  else:
    from safetensors.numpy import save_file
    save_file({k: np.ascontiguousarray(v) for k, v in sd.items()}, path)
  workdir = str(tmp_path / "imported")
  assert importers.import_to_workdir(path, workdir) == {"name": "rdn", **arch}
  config, graphdef2, params2, step = run_dir.load_run(workdir, "latest")
  assert step == 0 and config.model.scale == scale
  x = jnp.asarray(np.random.default_rng(1).uniform(size=(1, 9, 11, 3)).astype(np.float32))
  ref = nnx.merge(graphdef, params)(x)
  np.testing.assert_allclose(np.asarray(nnx.merge(graphdef2, params2)(x)), np.asarray(ref), atol=1e-5)
  with pytest.raises(FileExistsError):
    importers.import_to_workdir(path, workdir)


def test_imported_kernel_orientation_matches_pytorch_conv(tmp_path):
  """A PyTorch Conv2d (OIHW cross-correlation, zero padding 1) computed by hand equals the imported layer."""
  graphdef, params = _random_rdn(2, seed=3)
  arch = {"scale": 2, "num_blocks": 2, "num_layers": 3, "growth": 4, "features": 6, "channels": 3}
  sd = to_authors_state_dict(params, arch, rgb_range=1.0)
  w, b = sd["SFENet1.weight"], sd["SFENet1.bias"]
  rng = np.random.default_rng(0)
  sd["SFENet1.weight"] = w = rng.normal(size=w.shape).astype(np.float32)
  x = rng.normal(size=(3, 5, 7)).astype(np.float32)  # CHW
  xp = np.pad(x, ((0, 0), (1, 1), (1, 1)))
  ref = np.zeros((6, 5, 7), np.float32)
  for o in range(6):
    for i in range(5):
      for j in range(7):
        ref[o, i, j] = np.sum(w[o] * xp[:, i:i + 3, j:j + 3]) + b[o]
  imported = edsr_rdn.to_params(sd, arch, params, rgb_range=1.0)
  model = nnx.merge(graphdef, imported)
  out = np.asarray(model.sfe1(jnp.asarray(x.transpose(1, 2, 0)[None])))[0].transpose(2, 0, 1)
  np.testing.assert_allclose(out, ref, atol=1e-4)


def test_bad_weight_files(tmp_path):
  with pytest.raises(weights_io.WeightsFileError, match="missing.npz does not exist"):
    importers.read_state_dict(str(tmp_path / "missing.npz"))
  (tmp_path / "w.bin").write_bytes(b"x")
  with pytest.raises(ValueError, match="unsupported weights format"):
    importers.read_state_dict(str(tmp_path / "w.bin"))
  (tmp_path / "cut.npz").write_bytes(b"PK\x03\x04 truncated")
  with pytest.raises(weights_io.WeightsFileError, match="cannot read .*cut.npz"):
    importers.read_state_dict(str(tmp_path / "cut.npz"))
  np.savez(tmp_path / "other.npz", conv1=np.zeros(3))
  with pytest.raises(ValueError, match="not a known weights layout .*EDSR-PyTorch RDN, BasicSR RRDBNet"):
    importers.detect(importers.read_state_dict(str(tmp_path / "other.npz")))
  with pytest.raises(ValueError, match="not an RDN state dict"):
    edsr_rdn.infer_architecture(importers.read_state_dict(str(tmp_path / "other.npz")))


def test_fine_tune_from_another_scale_keeps_matching_layers(trained_workdir):
  from sr_jax.configs import test as test_cfg
  config = test_cfg.get_config()
  config.model.scale = 3
  fresh = nnx.state(registry.build_generator(config.model, seed=5))
  init = train_workdir.init_params_from(trained_workdir, fresh)
  _, _, src, _ = run_dir.load_run(trained_workdir, "best")
  got, want, rnd = (dict(nnx.to_flat_state(p)) for p in (init, src, fresh))
  np.testing.assert_array_equal(np.asarray(got[("sfe1", "kernel")][...]), np.asarray(want[("sfe1", "kernel")][...]))
  np.testing.assert_array_equal(np.asarray(got[("out", "kernel")][...]), np.asarray(want[("out", "kernel")][...]))
  # The x3 up-sampler has another shape: it keeps its fresh initialisation.
  assert got[("up", 0, "kernel")].shape != want[("up", 0, "kernel")].shape
  np.testing.assert_array_equal(np.asarray(got[("up", 0, "kernel")][...]), np.asarray(rnd[("up", 0, "kernel")][...]))


def test_a_folder_of_same_size_images_runs_in_batches_with_the_same_results(trained_workdir, tmp_path):
  from sr_jax.inference import upscale_lib, upscaler

  class Counting(upscaler.Upscaler):
    calls = []

    def _run(self, batch):
      self.calls.append(len(batch))
      return super()._run(batch)

  rng = np.random.default_rng(4)
  for i in range(5):
    Image.fromarray(rng.integers(0, 256, (12, 15, 3)).astype(np.uint8)).save(tmp_path / f"frame{i}.png")
  Image.fromarray(rng.integers(0, 256, (40, 44, 3)).astype(np.uint8)).save(tmp_path / "big.png")  # Tiled.
  (tmp_path / "broken.png").write_bytes(b"not an image")
  run = run_dir.load_run(trained_workdir, "best")
  up = Counting(run.graphdef, run.params, run.config.model, tile=16, overlap=4, batch_size=4)
  jobs = upscale_lib.plan(sorted(str(p) for p in tmp_path.glob("*.png")), str(tmp_path), str(tmp_path / "o"), 2,
                          None)
  done, failed = upscale_lib.upscale_files(up, jobs, max_pixels=None)
  assert done == 6 and len(failed) == 1 and "broken.png" in failed[0]
  assert sorted(up.calls[:2]) == [4, 4]  # 5 frames: a batch of 4, then 1 padded to 4; the big image's tiles after.
  single = upscaler.Upscaler(run.graphdef, run.params, run.config.model, tile=16, overlap=4, batch_size=1)
  for i in range(5):
    expected = upscaler.upscale_image(single, np.asarray(Image.open(tmp_path / f"frame{i}.png")))
    got = np.asarray(Image.open(tmp_path / "o" / f"frame{i}_x2.png")).astype(int)
    assert np.abs(got - expected).max() <= 1
