import numpy as np
import pytest
from flax import nnx

from sr_jax.configs import test as test_cfg
from sr_jax.inference import upscaler
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
  lrs = [rng.integers(0, 256, (9, 13, 3)).astype(np.uint8) for _ in range(5)]  # 5 = 3 + 2 (last batch padded).
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
  assert upscaler.Upscaler(graphdef, params, config.model, tile="auto").tile == upscaler.CPU_TILE  # This CPU.
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
