"""inference/upscale_lib.py: output names (collisions, case, long names, symlinks), the metadata and quality of
what is written, a full disk."""

import io
import os

import numpy as np
import pytest
from faults import fill, tmpfs
from PIL import Image, ImageCms

from programs import photos, run_module
from sr_jax.inference import upscale_lib


@pytest.fixture(scope="module")
def workdir(finished_run):
  return finished_run


@pytest.fixture(scope="module")
def run(finished_run):
  return finished_run


def test_upscale_colliding_names_are_disambiguated_and_ext_checked_first(tmp_path, trained_workdir):
  src = tmp_path / "in"
  photos(src, n=1)
  Image.open(src / "img0.png").save(src / "img0.jpg", quality=95)
  (src / "sub").mkdir()
  Image.open(src / "img0.png").save(src / "sub" / "deep.png")
  out = run_module("sr_jax.cli.upscale", f"--workdir={trained_workdir}", f"--input={src}", f"--output={tmp_path / 'o'}",
                   "--ext=png")
  assert out.returncode == 0, out.stderr[-2000:]
  assert "3 image(s) upscaled" in out.stdout
  written = sorted(os.path.relpath(os.path.join(r, f), tmp_path / "o") for r, _, fs in os.walk(tmp_path / "o")
                   for f in fs)
  assert written == ["img0_jpg_x2.png", "img0_png_x2.png", os.path.join("sub", "deep_x2.png")]
  out = run_module("sr_jax.cli.upscale", f"--workdir={trained_workdir}", f"--input={src}", f"--output={tmp_path / 'x'}",
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
  out = run_module("sr_jax.cli.upscale", f"--workdir={trained_workdir}", f"--input={tmp_path / 'in'}",
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


def test_upscale_replaces_a_symlink_at_the_destination_and_never_writes_through_it(workdir, tmp_path):
  photos(tmp_path / "in", n=1)
  out = tmp_path / "out"
  out.mkdir()
  precious = tmp_path / "precious.txt"
  precious.write_text("keep me")
  os.symlink(precious, out / "img0_x2.png")
  res = run_module("sr_jax.cli.upscale", f"--workdir={workdir}", f"--input={tmp_path / 'in'}", f"--output={out}")
  assert res.returncode == 0, res.stderr[-2000:]
  assert precious.read_text() == "keep me"
  assert not os.path.islink(out / "img0_x2.png") and Image.open(out / "img0_x2.png").size == (96, 80)
  assert sorted(os.listdir(out)) == ["img0_x2.png"]  # No temporary file left.


def test_a_full_disk_keeps_good_outputs_and_says_so(workdir, tmp_path):
  photos(tmp_path / "in", n=2, size=(60, 64))
  with tmpfs(tmp_path / "disk", size="2m") as disk:
    out = disk / "out"
    res = run_module("sr_jax.cli.upscale", f"--workdir={workdir}", f"--input={tmp_path / 'in'}", f"--output={out}")
    assert res.returncode == 0, res.stderr[-2000:]
    good = {n: (out / n).read_bytes() for n in os.listdir(out)}
    fill(disk, leave_kb=8)
    res = run_module("sr_jax.cli.upscale", f"--workdir={workdir}", f"--input={tmp_path / 'in'}", f"--output={out}")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "No space left on device (the file already there is kept as it was)" in res.stdout + res.stderr
    assert {n: (out / n).read_bytes() for n in os.listdir(out)} == good  # Nothing lost, nothing half-written.


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
  res = run_module("sr_jax.cli.upscale", f"--workdir={workdir}", f"--input={src}", f"--output={tmp_path / 'out'}",
                   "--ext=png")
  assert res.returncode == 0 and "4 image(s) upscaled" in res.stdout, res.stderr[-2000:]
  assert len(os.listdir(tmp_path / "out")) == 4


def test_upscale_writes_an_output_whose_name_is_near_the_limit(tmp_path, run):
  from PIL import Image
  (tmp_path / "in").mkdir()
  name = "p" * 246 + ".png"  # Output: the same name with "_x2" (253 characters); its temporary name must fit too.
  Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 20, 3), np.uint8)).save(tmp_path / "in" / name)
  res = run_module("sr_jax.cli.upscale", f"--workdir={run}", f"--input={tmp_path / 'in'}",
                   f"--output={tmp_path / 'out'}")
  assert res.returncode == 0, res.stderr[-2000:]
  written = os.listdir(tmp_path / "out")
  assert len(written) == 1 and len(written[0]) >= 250, written
