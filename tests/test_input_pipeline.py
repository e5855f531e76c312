import numpy as np
import pytest

from sr_jax.data import datasets, input_pipeline
from sr_jax.image import dihedral, imresize


@pytest.fixture(scope="module")
def photos():
  return datasets.load_source("skimage:astronaut,coffee,chelsea", min_size=64)


def _batches(images, n, **kw):
  args = dict(patch_size=8, scale=2, global_batch=4, seed=3)
  args.update(kw)
  it = input_pipeline.train_dataset(images, **args).as_numpy_iterator()
  return [next(it) for _ in range(n)]


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_lr_patch_is_matlab_bicubic_of_hr_patch(photos, scale):
  (batch,) = _batches(photos, 1, scale=scale, patch_size=6)
  assert batch["hr"].shape == (4, 6 * scale, 6 * scale, 3) and batch["hr"].dtype == np.uint8
  assert batch["lr"].shape == (4, 6, 6, 3) and batch["lr"].dtype == np.uint8
  for hr, lr in zip(batch["hr"], batch["lr"]):
    ref = imresize.to_uint8(imresize.imresize(hr / 255.0, 1.0 / scale))
    # TF computes in float32: a value within 1e-4 of a .5 rounding boundary may round the other way.
    assert np.abs(lr.astype(int) - ref).max() <= 1
    assert (lr == ref).mean() > 0.999


def test_patches_are_crops_of_the_images(photos):
  sampler = input_pipeline.PatchSampler(photos, 16, seed=0, augment=False)
  for i in range(10):
    img, top, left, k = sampler.location(i)
    assert k == 0
    np.testing.assert_array_equal(sampler.sample(i), photos.get(img)[top:top + 16, left:left + 16])


def test_epoch_visits_every_image_once(photos):
  sampler = input_pipeline.PatchSampler(photos, 16, seed=0)
  for epoch in range(3):
    seen = sorted(sampler.location(epoch * 3 + j)[0] for j in range(3))
    assert seen == [0, 1, 2]


def test_deterministic_and_resumable(photos):
  a = _batches(photos, 5)
  b = _batches(photos, 5)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x["hr"], y["hr"])
  resumed = _batches(photos, 2, start_step=3)
  np.testing.assert_array_equal(resumed[0]["hr"], a[3]["hr"])
  np.testing.assert_array_equal(resumed[1]["lr"], a[4]["lr"])
  other_seed = _batches(photos, 1, seed=4)
  assert not np.array_equal(other_seed[0]["hr"], a[0]["hr"])


def test_process_shards_are_disjoint_rows_of_the_global_batch(photos):
  full = _batches(photos, 2)
  parts = [_batches(photos, 2, process_index=p, process_count=2) for p in range(2)]
  for step in range(2):
    joined = np.concatenate([parts[0][step]["hr"], parts[1][step]["hr"]])
    np.testing.assert_array_equal(joined, full[step]["hr"])
  with pytest.raises(ValueError, match="not divisible"):
    _batches(photos, 1, global_batch=5, process_count=2)


def test_dihedral_transforms_are_the_eight_distinct_ones():
  x = np.arange(12).reshape(2, 2, 3)
  outs = {np.ascontiguousarray(dihedral.apply(x, k)).tobytes() for k in range(8)}
  assert len(outs) == 8
  for k in range(8):
    np.testing.assert_array_equal(dihedral.invert(dihedral.apply(x, k), k), x)


def test_gray_training_channel(photos):
  (batch,) = _batches(photos, 1, channels=1)
  assert batch["hr"].shape == (4, 16, 16, 1) and batch["lr"].shape == (4, 8, 8, 1)


def test_images_smaller_than_patch_are_skipped(tmp_path):
  from PIL import Image
  Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(tmp_path / "small.png")
  Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "ok.png")
  (tmp_path / "notes.txt").write_text("not an image")
  images = datasets.load_source(str(tmp_path), min_size=32)
  assert images.names == ["ok.png"] and len(images.skipped) == 2
  with pytest.raises(ValueError, match="no usable images"):
    datasets.load_source(str(tmp_path), min_size=64)


def test_realesrgan_patches_are_a_pure_function_of_seed_and_index(photos):
  from sr_jax.data.degradations import realesrgan, workers
  spec = realesrgan.Spec()
  kw = dict(patch_size=16, scale=4, degradation=spec)
  a = _batches(photos, 3, **kw)
  assert a[0]["lr"].shape == (4, 16, 16, 3) and a[0]["hr"].shape == (4, 64, 64, 3)
  resumed = _batches(photos, 1, start_step=2, **kw)
  parts = [_batches(photos, 3, process_index=p, process_count=2, **kw) for p in range(2)]
  pooled = _batches(photos, 3, degradation_workers=2, **kw)  # On worker processes, through shared memory.
  with pytest.MonkeyPatch.context() as mp:  # Or through the pool's pipes, when /dev/shm is short.
    mp.setattr(workers, "_segment", lambda nbytes: None)
    piped = _batches(photos, 3, degradation_workers=2, **kw)
  # The pooled run's batches went through a segment that holds them (other tests in this process may have left
  # smaller ones in the module's list: it is per process, not per test).
  assert any(s.size >= 2 * 4 * 64 * 64 * 3 + 4 * 16 * 16 * 3 for s in workers._SEGMENTS)
  for key in ("lr", "hr"):
    np.testing.assert_array_equal(resumed[0][key], a[2][key])  # After a restart.
    for step in range(3):
      np.testing.assert_array_equal(pooled[step][key], a[step][key])
      np.testing.assert_array_equal(piped[step][key], a[step][key])
    for step in range(3):  # On 1 or 2 processes (hence devices): the same global batch.
      np.testing.assert_array_equal(np.concatenate([parts[0][step][key], parts[1][step][key]]), a[step][key])
  # The degraded LR is not the bicubic one, and the target is the USM-sharpened HR crop.
  plain = _batches(photos, 1, patch_size=16, scale=4)
  assert not np.array_equal(plain[0]["lr"], a[0]["lr"])
  sharp = realesrgan.ops.usm_sharp(realesrgan.ops.planes(plain[0]["hr"][0]))
  np.testing.assert_array_equal(a[0]["hr"][0], realesrgan.ops.to_uint8(sharp))


@pytest.mark.parametrize("procs", [0, 2])
def test_script_holding_a_degraded_iterator_until_exit_exits_cleanly(tmp_path, procs):
  """A dataset iterator kept alive until the interpreter exits (a script's global) once hung the exit (threads) or
  printed a traceback from the terminated worker pool (processes)."""
  import subprocess
  import sys
  import textwrap
  script = tmp_path / "hold.py"
  script.write_text(textwrap.dedent(f"""
      from sr_jax import datasets, input_pipeline
      from sr_jax.data.degradations import realesrgan
      images = datasets.load_source("skimage:astronaut,coffee", min_size=64)
      ds = input_pipeline.train_dataset(images, patch_size=16, scale=4, global_batch=4, seed=0,
                                        degradation=realesrgan.Spec(), degradation_workers={procs})
      it = ds.as_numpy_iterator()
      print(next(it)["lr"].shape)
      """))
  out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=180)
  assert out.returncode == 0 and "(4, 16, 16, 3)" in out.stdout, out.stderr[-3000:]
  assert "Traceback" not in out.stderr and "terminate called" not in out.stderr, out.stderr[-3000:]
