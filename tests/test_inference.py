import numpy as np
import pytest
from flax import nnx

from sr_jax.configs import test as test_cfg
from sr_jax.inference import tile_plan, upscaler
from sr_jax.models import registry


@pytest.fixture(scope="module")
def model_parts():
  config = test_cfg.get_config()
  config.model.update(num_blocks=2, num_layers=2, growth=8, features=8)
  graphdef, params = nnx.split(registry.build_generator(config.model, seed=1))
  return config, graphdef, params


@pytest.mark.parametrize("shape,tile", [((37, 53), 8), ((20, 31), 12), ((33, 17), 5)])
def test_tiled_equals_full_image(model_parts, shape, tile):
  config, graphdef, params = model_parts
  lr = np.random.default_rng(0).integers(0, 256, (*shape, 3)).astype(np.uint8)
  full = upscaler.Upscaler(graphdef, params, config.model)(lr)
  tiled = upscaler.Upscaler(graphdef, params, config.model, tile=tile, batch_size=3)(lr)
  assert full.shape == tiled.shape == (shape[0] * 2, shape[1] * 2, 3)
  assert np.abs(full - tiled).max() <= 1e-5


def test_too_small_overlap_changes_the_result(model_parts):
  """The equality above is not trivial: with less context than the receptive field, tiles differ."""
  config, graphdef, params = model_parts
  lr = np.random.default_rng(1).integers(0, 256, (40, 40, 3)).astype(np.uint8)
  full = upscaler.Upscaler(graphdef, params, config.model)(lr)
  tiled = upscaler.Upscaler(graphdef, params, config.model, tile=10, overlap=1)(lr)
  assert np.abs(full - tiled).max() > 1e-6


class _NearestUpscaler(upscaler.Upscaler):
  """An identity-like (equivariant) model: nearest-neighbour up-scaling."""

  def _run(self, batch):
    return np.repeat(np.repeat(batch / 255.0, self.scale, axis=1), self.scale, axis=2)


def test_self_ensemble_of_an_equivariant_model_is_unchanged(model_parts):
  config, graphdef, params = model_parts
  lr = np.random.default_rng(2).integers(0, 256, (9, 14, 3)).astype(np.uint8)
  plain = _NearestUpscaler(graphdef, params, config.model)(lr)
  ensembled = _NearestUpscaler(graphdef, params, config.model, self_ensemble=True)(lr)
  np.testing.assert_allclose(ensembled, plain, atol=1e-12)
  # A real (non-equivariant) RDN changes under the ensemble, and the output keeps its shape.
  real = upscaler.Upscaler(graphdef, params, config.model, self_ensemble=True)(lr)
  assert real.shape == (18, 28, 3) and not np.allclose(real, upscaler.Upscaler(graphdef, params,
                                                                                   config.model)(lr))


def test_gray_input_is_accepted(model_parts):
  config, graphdef, params = model_parts
  out = upscaler.Upscaler(graphdef, params, config.model)(np.zeros((10, 12), np.uint8))
  assert out.shape == (20, 24, 3)


@pytest.mark.parametrize("self_ensemble", [False, True])
def test_batch_of_same_size_images_equals_one_at_a_time(model_parts, self_ensemble):
  config, graphdef, params = model_parts
  rng = np.random.default_rng(3)
  lrs = [rng.integers(0, 256, (9, 13, 3)).astype(np.uint8) for _ in range(5)]  # 5 = 3 + 2 (a last batch of 2).
  up = upscaler.Upscaler(graphdef, params, config.model, tile=16, batch_size=3, self_ensemble=self_ensemble)
  assert up.fits_one_window((9, 13)) and not up.fits_one_window((9, 16 + 2 * up.overlap + 1))
  batched = up.batch(lrs)
  for lr, out in zip(lrs, batched):
    np.testing.assert_allclose(out, up(lr), atol=1e-5)


def test_tile_flag_values():
  assert upscaler.parse_tile("auto") == upscaler.parse_tile("AUTO") == "auto"
  assert upscaler.parse_tile("0") == 0 and upscaler.parse_tile(" 192 ") == 192 and upscaler.parse_tile(64) == 64
  for bad in ("-1", "abc", "1.5", ""):
    with pytest.raises(ValueError, match="--tile"):
      upscaler.parse_tile(bad)


class _SmallDevice(upscaler.Upscaler):
  """A device that runs out of memory above ``limit`` LR pixels in one call (as jax reports it)."""
  limit = 1000

  def _run(self, batch):
    if batch.shape[0] * batch.shape[1] * batch.shape[2] > self.limit:
      raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 1234 bytes.")
    return super()._run(batch)


def test_auto_tile_is_whole_on_an_accelerator_and_tiles_when_memory_runs_out(model_parts, monkeypatch):
  config, graphdef, params = model_parts
  cpu = upscaler.Upscaler(graphdef, params, config.model, tile="auto")
  assert cpu.planned and cpu.tile == 0  # This CPU: by the memory budget (the test below).
  monkeypatch.setattr(upscaler.jax, "default_backend", lambda: "gpu")
  monkeypatch.setattr(upscaler, "AUTO_TILES", (16, 8, 4))
  rng = np.random.default_rng(5)
  small, big = (rng.integers(0, 256, s).astype(np.uint8) for s in ((12, 14, 3), (40, 37, 3)))
  whole = upscaler.Upscaler(graphdef, params, config.model)
  up = _SmallDevice(graphdef, params, config.model, tile="auto", batch_size=4)
  assert up.tile == 0
  np.testing.assert_allclose(up(small), whole(small), atol=1e-5)  # Fits: whole, no tiling.
  assert up.tile == 0
  # 40x37 whole does not fit; tiles of 16 (+2x9 overlap: 34² windows) neither; tiles of 8 (26² windows) do.
  np.testing.assert_allclose(up(big), whole(big), atol=1e-5)
  assert (up.tile, up.overlap, up.batch_size) == (8, 9, 1)
  np.testing.assert_allclose(up(big), whole(big), atol=1e-5)  # The tile that worked is kept.
  # A given tile is the user's: the error is theirs to see, as is any other error.
  with pytest.raises(RuntimeError, match="RESOURCE_EXHAUSTED"):
    _SmallDevice(graphdef, params, config.model, tile=0)(big)
  tiny = _SmallDevice(graphdef, params, config.model, tile="auto", batch_size=4)
  tiny.limit = 100  # Even the smallest tile's window (4 + 2x9 = 22² pixels) does not fit.
  with pytest.raises(RuntimeError, match="RESOURCE_EXHAUSTED"):
    tiny(big)
  assert (tiny.tile, tiny.batch_size) == (4, 1)  # Tried down to the last tile, one window at a time.


class _Counting(upscaler.Upscaler):
  """Records the (N, H, W) of every forward call."""

  def _run(self, batch):
    self.calls = getattr(self, "calls", []) + [batch.shape[:3]]
    return super()._run(batch)


def test_auto_tile_on_a_cpu_runs_whole_within_the_budget_and_tiles_beyond_it_with_bounded_work(
    model_parts, monkeypatch):
  config, graphdef, params = model_parts
  rng = np.random.default_rng(6)
  lr = rng.integers(0, 256, (200, 190, 3)).astype(np.uint8)
  whole = upscaler.Upscaler(graphdef, params, config.model, tile=0)(lr)
  up = _Counting(graphdef, params, config.model, tile="auto")  # The default budget: 2 GB.
  per_pixel = up.bytes_per_pixel()
  assert per_pixel > 0 and tile_plan.DEFAULT_BUDGET_GB == 2.0
  np.testing.assert_array_equal(up(lr), whole)  # Within the budget: whole, one call, nothing computed twice.
  assert up.calls == [(1, 200, 190)]
  # A budget of 80² pixels' worth: tiles of 50 + 2 x 9 (the exact overlap) compute the image 1.95 times.
  up = _Counting(graphdef, params, config.model, tile="auto", budget_gb=6400 * per_pixel / 2**30)
  np.testing.assert_allclose(up(lr), whole, atol=1e-5)
  assert up.plan(200, 190) == tile_plan.Plan(50, 9, True, tile_plan.work(200, 190, 50, 9))
  assert all(n * h * w <= 6400 for n, h, w in up.calls) and len(up.calls) == 16
  assert sum(n * h * w for n, h, w in up.calls) <= tile_plan.MAX_WORK * lr.shape[0] * lr.shape[1]
  # 50² windows: the exact overlap would leave 32-pixel cores (3.5x the work); it is cut, and the log says so.
  up = _Counting(graphdef, params, config.model, tile="auto", budget_gb=2500 * per_pixel / 2**30)
  said = []
  monkeypatch.setattr(upscaler.logging, "info", lambda msg, *args: said.append(msg % args))  # Whatever absl's level.
  tiled = up(lr)
  p = up.plan(200, 190)
  assert not p.exact and p.overlap < up.overlap == 9 and len(said) == 1 and "tiles may differ slightly" in said[0]
  assert all(n * h * w <= 2500 for n, h, w in up.calls)
  assert sum(n * h * w for n, h, w in up.calls) <= tile_plan.MAX_WORK * lr.shape[0] * lr.shape[1]
  assert 1e-6 < np.abs(tiled - whole).max() < 0.1  # Close, not equal (the far context is cut).
  # Same-size images are batched only while batch_size of them fit the budget together.
  assert up.fits_one_window((25, 25)) and not up.fits_one_window((25, 26))  # batch_size 4 x 625 = 2500.


@pytest.mark.parametrize("grid", [1, 8])
def test_tile_plans_keep_within_the_budget_and_the_work_bound(grid):
  rng = np.random.default_rng(7)
  for _ in range(300):
    h, w = (int(v) for v in rng.integers(1, 3000, 2))
    per_pixel, overlap = float(rng.uniform(100, 20000)), int(rng.integers(0, 400)) // grid * grid
    budget = float(rng.uniform(1e6, 4e9))
    p = tile_plan.plan(h, w, bytes_per_pixel=per_pixel, budget=budget, overlap=overlap, grid=grid)
    if h * w * per_pixel <= budget:
      assert p == tile_plan.Plan(0, overlap, True, 1.0)
      continue
    window = max(grid, int((budget / per_pixel) ** 0.5) // grid * grid)
    assert p.tile > 0 and p.tile % grid == 0 and p.overlap % grid == 0
    assert p.tile + 2 * p.overlap <= window or p.tile == grid  # Memory: within the budget.
    assert p.work == tile_plan.work(h, w, p.tile, p.overlap) and (p.work <= tile_plan.MAX_WORK or p.overlap == 0)
    assert p.exact == (p.overlap == overlap)
