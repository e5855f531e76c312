"""Hostile inputs and everyday faults at every entry point: oversized headers, colliding outputs, metadata,
user errors as one line, config.json of runs that never trained, thread-safe pixel limits, bounded evaluation."""

import concurrent.futures
import io
import json
import os
import struct
import subprocess
import sys
import tracemalloc
import zlib

import numpy as np
import pytest
from PIL import Image, ImageCms

from sr_jax.data import datasets
from sr_jax.evaluation import eval_report
from sr_jax.image import image_io
from sr_jax.training import train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIMIT = f"{image_io.DEFAULT_MAX_PIXELS:,}"


def _cli(module, *args, cwd=REPO):
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
  return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True, text=True,
                        timeout=600)


def write_bomb(path, width=60000, height=60000):
  """A real PNG whose header claims width x height pixels (a decompression bomb's calling card)."""
  buf = io.BytesIO()
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, format="PNG")
  data = bytearray(buf.getvalue())
  ihdr = 8 + 8  # Signature, then the IHDR chunk's length and type.
  data[ihdr:ihdr + 8] = struct.pack(">II", width, height)
  data[ihdr + 13:ihdr + 17] = struct.pack(">I", zlib.crc32(bytes(data[ihdr - 4:ihdr + 13])))
  path.write_bytes(bytes(data))


def _photos(folder, n=2, size=(40, 48)):
  folder.mkdir(parents=True, exist_ok=True)
  rng = np.random.default_rng(0)
  for i in range(n):
    Image.fromarray(rng.integers(0, 256, (*size, 3)).astype(np.uint8)).save(folder / f"img{i}.png")


@pytest.fixture(scope="module")
def trained_workdir(tmp_path_factory):
  from sr_jax.configs import test as test_cfg
  config = test_cfg.get_config()
  config.train.update(num_devices=1, num_steps=3)
  workdir = str(tmp_path_factory.mktemp("run"))
  train.train_and_evaluate(config, workdir)
  return workdir


def test_oversized_header_is_skipped_by_evaluate_with_one_limit_and_the_rest_scored(tmp_path):
  _photos(tmp_path / "set", n=3)
  write_bomb(tmp_path / "set" / "bomb.png")
  out = _cli("sr_jax.cli.evaluate", "--baseline=bicubic", f"--datasets={tmp_path / 'set'}", "--scales=2",
             f"--output_dir={tmp_path / 'ev'}")
  assert out.returncode == 0, out.stderr[-3000:]
  summary = json.loads((tmp_path / "ev" / "summary.json").read_text())["set"]["x2"]
  assert summary["num_images"] == 3 and summary["skipped"] == 1
  line = next(l for l in out.stderr.splitlines() if "bomb.png" in l)
  assert f"60000x60000 = 3,600,000,000 pixels is over the limit of {LIMIT} pixels" in line
  assert line.count("pixels") == 2  # One limit quoted, not two.
  out = _cli("sr_jax.cli.evaluate", "--baseline=bicubic", f"--datasets={tmp_path / 'set'}", "--scales=2",
             f"--output_dir={tmp_path / 'ev2'}", "--max_pixels=1000")
  assert out.returncode == 1 and "no usable image" in out.stderr and "Traceback" not in out.stderr


def test_oversized_header_is_skipped_by_training_data_and_upscale(tmp_path, trained_workdir):
  _photos(tmp_path / "in")
  write_bomb(tmp_path / "in" / "bomb.png")
  images = datasets.load_source(str(tmp_path / "in"), max_pixels=image_io.DEFAULT_MAX_PIXELS)
  assert len(images) == 2 and "over the limit" in images.skipped[0]
  out = _cli("sr_jax.cli.upscale", f"--workdir={trained_workdir}", f"--input={tmp_path / 'in'}",
             f"--output={tmp_path / 'out'}")
  assert out.returncode == 1 and "2 image(s) upscaled" in out.stdout and "bomb.png" in out.stdout
  assert f"over the limit of {LIMIT} pixels" in out.stdout


def test_pixel_limit_is_per_call_and_thread_safe(tmp_path):
  Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "a.png")

  def read(i):
    limit = 1000 if i % 2 else None
    try:
      image_io.read_image(str(tmp_path / "a.png"), max_pixels=limit)
      return limit is None
    except image_io.ImageReadError as e:
      return limit is not None and "over the limit of 1,000 pixels" in str(e)

  with concurrent.futures.ThreadPoolExecutor(16) as pool:
    assert all(pool.map(read, range(400)))
  assert Image.MAX_IMAGE_PIXELS is None  # Never touched per call (the limit is checked from the header).


def test_upscale_colliding_names_are_disambiguated_and_ext_checked_first(tmp_path, trained_workdir):
  src = tmp_path / "in"
  _photos(src, n=1)
  Image.open(src / "img0.png").save(src / "img0.jpg", quality=95)
  (src / "sub").mkdir()
  Image.open(src / "img0.png").save(src / "sub" / "deep.png")
  out = _cli("sr_jax.cli.upscale", f"--workdir={trained_workdir}", f"--input={src}", f"--output={tmp_path / 'o'}",
             "--ext=png")
  assert out.returncode == 0, out.stderr[-2000:]
  assert "3 image(s) upscaled" in out.stdout
  written = sorted(os.path.relpath(os.path.join(r, f), tmp_path / "o") for r, _, fs in os.walk(tmp_path / "o")
                   for f in fs)
  assert written == ["img0_jpg_x2.png", "img0_png_x2.png", os.path.join("sub", "deep_x2.png")]
  out = _cli("sr_jax.cli.upscale", f"--workdir={trained_workdir}", f"--input={src}", f"--output={tmp_path / 'x'}",
             "--ext=xyz")
  assert out.returncode != 0 and "--ext=xyz" in out.stderr and not (tmp_path / "x").exists()


def test_upscale_keeps_icc_profile_and_exif_and_writes_quality_95(tmp_path, trained_workdir):
  srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
  rgb = np.random.default_rng(1).integers(0, 256, (24, 32, 3)).astype(np.uint8)
  exif = Image.Exif()
  exif[0x0112] = 6  # Rotated 90 CW on display.
  exif[0x010F] = "sr_jax test camera"  # Make.
  (tmp_path / "in").mkdir()
  Image.fromarray(rgb).save(tmp_path / "in" / "photo.jpg", quality=90, icc_profile=srgb, exif=exif)
  out = _cli("sr_jax.cli.upscale", f"--workdir={trained_workdir}", f"--input={tmp_path / 'in'}",
             f"--output={tmp_path / 'out'}")
  assert out.returncode == 0, out.stderr[-2000:]
  with Image.open(tmp_path / "out" / "photo_x2.jpg") as im:
    assert im.info.get("icc_profile") == srgb
    assert im.getexif().get(0x010F) == "sr_jax test camera" and im.getexif().get(0x0112, 1) == 1
    assert im.size == (48, 64)  # Upright (the orientation was applied, then reset in EXIF).
    written = im.quantization
  buf = io.BytesIO()
  Image.fromarray(rgb).save(buf, format="JPEG", quality=95)
  assert written == Image.open(buf).quantization  # The tables of quality 95 (not Pillow's default 75).


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
    out = _cli(module, *args)
    errors = [l for l in out.stderr.splitlines() if ": error: " in l]
    assert out.returncode == 1 and len(errors) == 1 and message in errors[0], (module, out.stderr[-2000:])
    assert "Traceback" not in out.stderr and "\\n" not in errors[0], out.stderr[-2000:]
  out = _cli("sr_jax.cli.import_weights", f"--weights={tmp_path / 'w.npz'}", f"--workdir={tmp_path / 'imp'}", "extra")
  assert out.returncode != 0 and "Unexpected arguments: ['extra']" in out.stderr
  out = _cli("sr_jax.cli.evaluate", "--baseline=bicubic", "--scales=two")
  assert out.returncode != 0 and "--scales=two" in out.stderr and "Traceback" not in out.stderr


def test_a_run_that_never_trained_leaves_no_config_and_its_workdir_stays_usable(test_config, tmp_path):
  (tmp_path / "empty").mkdir()
  test_config.data.train = str(tmp_path / "empty")
  with pytest.raises(FileNotFoundError, match="is empty"):
    train.train_and_evaluate(test_config, str(tmp_path / "run"))
  assert not (tmp_path / "run" / "config.json").exists()
  test_config.data.train = "skimage:astronaut"
  test_config.model.scale = 3  # Another model in the same workdir: nothing was trained, so it is new.
  test_config.train.update(num_devices=1, num_steps=3)
  assert int(train.train_and_evaluate(test_config, str(tmp_path / "run")).step) == 3
  assert json.loads((tmp_path / "run" / "config.json").read_text())["model"]["scale"] == 3


def test_evaluation_memory_does_not_grow_with_the_set(tmp_path):
  """Streaming: scoring 12 images peaks about as high as scoring 3 (the SR outputs are not kept)."""
  photo = np.asarray(Image.open(datasets.skimage_files("astronaut")[0]).convert("RGB"))[:384, :384]
  peaks = {}
  for n in (3, 12):
    folder = tmp_path / f"set{n}"
    folder.mkdir()
    for i in range(n):
      Image.fromarray(np.roll(photo, 7 * i, axis=1)).save(folder / f"{i:02d}.png")
    tracemalloc.start()
    eval_report.evaluate({2: eval_report.bicubic_upscale(2)}, [str(folder)], "", str(tmp_path / f"out{n}"),
                         label="bicubic", heatmaps="none", sheets=True)
    peaks[n] = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
  one_image = photo.nbytes * 8  # float64 copies of one image, the unit of the working set.
  assert peaks[12] < peaks[3] + one_image, peaks


def test_default_heatmaps_are_bounded_and_all_is_a_flag(tmp_path):
  _photos(tmp_path / "set", n=8, size=(48, 48))
  for mode, count in (("worst", 5), ("all", 8), ("none", 0)):
    eval_report.evaluate({2: eval_report.bicubic_upscale(2)}, [str(tmp_path / "set")], "", str(tmp_path / mode),
                         label="bicubic", heatmaps=mode)
    folder = tmp_path / mode / "heatmaps" / "set_x2"
    assert (len(os.listdir(folder)) if folder.exists() else 0) == count, mode


def test_images_in_sub_folders_are_read(tmp_path):
  _photos(tmp_path / "data" / "a", n=1)
  _photos(tmp_path / "data" / "b" / "c", n=2)
  images = datasets.load_source(str(tmp_path / "data"))
  assert images.names == [os.path.join("a", "img0.png"), os.path.join("b", "c", "img0.png"),
                          os.path.join("b", "c", "img1.png")]
