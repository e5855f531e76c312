import numpy as np
import pytest
from flax import nnx

from sr_jax.configs import test as test_cfg
from sr_jax import inference
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
  full = inference.Upscaler(graphdef, params, config.model)(lr)
  tiled = inference.Upscaler(graphdef, params, config.model, tile=tile, batch_size=3)(lr)
  assert full.shape == tiled.shape == (shape[0] * 2, shape[1] * 2, 3)
  assert np.abs(full - tiled).max() <= 1e-5


def test_too_small_overlap_changes_the_result(model_parts):
  """The equality above is not trivial: with less context than the receptive field, tiles differ."""
  config, graphdef, params = model_parts
  lr = np.random.default_rng(1).integers(0, 256, (40, 40, 3)).astype(np.uint8)
  full = inference.Upscaler(graphdef, params, config.model)(lr)
  tiled = inference.Upscaler(graphdef, params, config.model, tile=10, overlap=1)(lr)
  assert np.abs(full - tiled).max() > 1e-6


class _NearestUpscaler(inference.Upscaler):
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
  real = inference.Upscaler(graphdef, params, config.model, self_ensemble=True)(lr)
  assert real.shape == (18, 28, 3) and not np.allclose(real, inference.Upscaler(graphdef, params,
                                                                                   config.model)(lr))


def test_gray_input_is_accepted(model_parts):
  config, graphdef, params = model_parts
  out = inference.Upscaler(graphdef, params, config.model)(np.zeros((10, 12), np.uint8))
  assert out.shape == (20, 24, 3)


@pytest.mark.parametrize("self_ensemble", [False, True])
def test_batch_of_same_size_images_equals_one_at_a_time(model_parts, self_ensemble):
  config, graphdef, params = model_parts
  rng = np.random.default_rng(3)
  lrs = [rng.integers(0, 256, (9, 13, 3)).astype(np.uint8) for _ in range(5)]  # 5 = 3 + 2 (last batch padded).
  up = inference.Upscaler(graphdef, params, config.model, tile=16, batch_size=3, self_ensemble=self_ensemble)
  assert up.fits_one_window((9, 13)) and not up.fits_one_window((9, 16 + 2 * up.overlap + 1))
  batched = up.batch(lrs)
  for lr, out in zip(lrs, batched):
    np.testing.assert_allclose(out, up(lr), atol=1e-5)
