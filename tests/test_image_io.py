"""image/image_io.py: odd files decoded or skipped with a reason, the decompression-bomb guard (the pixel limit
in every reader), FIFOs skipped, animated files used as their first frame, atomic writes."""

import concurrent.futures
import io
import json
import logging
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from programs import photos, run_module
from sr_jax.data import datasets
from sr_jax.image import image_io


def _odd_images(folder):
  rng = np.random.default_rng(0)
  rgb = rng.integers(0, 256, (48, 40, 3)).astype(np.uint8)
  Image.fromarray(rgb).save(folder / "ok.png")
  Image.fromarray(rgb).convert("CMYK").save(folder / "cmyk.jpg")
  Image.fromarray(rgb).convert("P").save(folder / "palette.png")
  Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(folder / "deep16.png")
  Image.fromarray(rgb[..., 0]).save(folder / "gray.bmp")
  Image.fromarray(np.dstack([rgb, rgb[..., 0]])).save(folder / "rgba.webp", lossless=True, exact=True)
  exif = Image.Image.getexif(Image.fromarray(rgb))
  exif[0x0112] = 8  # Rotate 90 CCW.
  Image.fromarray(rgb).save(folder / "exif.jpg", exif=exif)
  good = (folder / "ok.png").read_bytes()
  (folder / "truncated.png").write_bytes(good[: len(good) // 2])
  (folder / "zero.png").write_bytes(b"")
  (folder / "notes.txt").write_text("hello")
  Image.fromarray(rgb[:10, :10]).save(folder / "tiny.png")
  return rgb


LIMIT = f"{image_io.DEFAULT_MAX_PIXELS:,}"


def write_bomb(path, width=60000, height=60000):
  """A real PNG whose header claims width x height pixels (a decompression bomb's calling card)."""
  buf = io.BytesIO()
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, format="PNG")
  data = bytearray(buf.getvalue())
  ihdr = 8 + 8  # Signature, then the IHDR chunk's length and type.
  data[ihdr:ihdr + 8] = struct.pack(">II", width, height)
  data[ihdr + 13:ihdr + 17] = struct.pack(">I", zlib.crc32(bytes(data[ihdr - 4:ihdr + 13])))
  path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def workdir(finished_run):
  return finished_run


def test_odd_image_files_are_decoded_or_skipped_with_a_reason(tmp_path, caplog):
  rgb = _odd_images(tmp_path)
  images = datasets.load_source(str(tmp_path), min_size=16)
  assert sorted(images.names) == sorted(["ok.png", "cmyk.jpg", "palette.png", "deep16.png", "gray.bmp",
                                         "rgba.webp", "exif.jpg"])
  reasons = "\n".join(images.skipped)
  for name in ("truncated.png", "zero.png", "notes.txt", "tiny.png"):
    assert name in reasons
  assert "smaller than the 16px minimum" in reasons
  get = dict(zip(images.names, images.images))
  np.testing.assert_array_equal(get["ok.png"], rgb)
  np.testing.assert_array_equal(get["rgba.webp"], rgb)
  assert get["exif.jpg"].shape == (40, 48, 3)  # Rotated by its EXIF orientation.
  np.testing.assert_array_equal(get["deep16.png"][..., 0], rgb[..., 0])
  assert all(im.dtype == np.uint8 and im.shape[-1] == 3 for im in images.images)


def test_decompression_bomb_is_refused_with_the_limit(tmp_path):
  Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "big.png")
  with pytest.raises(image_io.ImageReadError, match="big.png.*decompression-bomb"):
    image_io.read_image(str(tmp_path / "big.png"), max_pixels=1000)


def test_oversized_header_is_skipped_by_evaluate_with_one_limit_and_the_rest_scored(tmp_path):
  photos(tmp_path / "set", n=3)
  write_bomb(tmp_path / "set" / "bomb.png")
  out = run_module("sr_jax.cli.evaluate", "--baseline=bicubic", f"--datasets={tmp_path / 'set'}", "--scales=2",
                   f"--output_dir={tmp_path / 'ev'}")
  assert out.returncode == 0, out.stderr[-3000:]
  summary = json.loads((tmp_path / "ev" / "summary.json").read_text())["set"]["x2"]
  assert summary["num_images"] == 3 and summary["skipped"] == 1
  line = next(l for l in out.stderr.splitlines() if "bomb.png" in l)
  assert f"60000x60000 = 3,600,000,000 pixels is over the limit of {LIMIT} pixels" in line
  assert line.count("pixels") == 2  # One limit quoted, not two.
  out = run_module("sr_jax.cli.evaluate", "--baseline=bicubic", f"--datasets={tmp_path / 'set'}", "--scales=2",
                   f"--output_dir={tmp_path / 'ev2'}", "--max_pixels=1000")
  assert out.returncode == 1 and "no usable image" in out.stderr and "Traceback" not in out.stderr


def test_oversized_header_is_skipped_by_training_data_and_upscale(tmp_path, trained_workdir):
  photos(tmp_path / "in")
  write_bomb(tmp_path / "in" / "bomb.png")
  images = datasets.load_source(str(tmp_path / "in"), max_pixels=image_io.DEFAULT_MAX_PIXELS)
  assert len(images) == 2 and "over the limit" in images.skipped[0]
  out = run_module("sr_jax.cli.upscale", f"--workdir={trained_workdir}", f"--input={tmp_path / 'in'}",
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


def test_a_fifo_in_an_image_folder_is_skipped_by_every_reader(workdir, tmp_path):
  photos(tmp_path / "set", n=2, size=(48, 48))
  os.mkfifo(tmp_path / "set" / "pipe.png")
  images = datasets.load_source(str(tmp_path / "set"))
  assert len(images) == 2 and "pipe.png: a FIFO (named pipe), not an image file" in images.skipped[0]
  res = run_module("sr_jax.cli.evaluate", "--baseline=bicubic", f"--datasets={tmp_path / 'set'}", "--scales=2",
                   f"--output_dir={tmp_path / 'ev'}", timeout=120)
  assert res.returncode == 0, res.stderr[-2000:]
  summary = json.loads((tmp_path / "ev" / "summary.json").read_text())["set"]["x2"]
  assert summary["num_images"] == 2 and summary["skipped"] == 1
  res = run_module("sr_jax.cli.upscale", f"--workdir={workdir}", f"--input={tmp_path / 'set'}",
                   f"--output={tmp_path / 'o'}", timeout=120)
  assert res.returncode == 1 and "2 image(s) upscaled" in res.stdout and "pipe.png: a FIFO" in res.stdout
  res = run_module("sr_jax.cli.upscale", f"--workdir={workdir}", f"--input={tmp_path / 'set' / 'pipe.png'}",
                   f"--output={tmp_path / 'o'}", timeout=120)
  assert res.returncode == 1 and "pipe.png: a FIFO" in res.stdout


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
