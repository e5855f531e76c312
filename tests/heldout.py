"""A short L1 run of any architecture and its PSNR against bicubic on an image it never saw (the architecture
tests' "it learns" check): patches of skimage's astronaut, scored on a crop of skimage's coffee (Y, shave s)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from sr_jax import datasets, imresize, input_pipeline, losses, metrics, optim, state as state_lib, train_step
from sr_jax.configs import test as test_cfg
from sr_jax.models import registry


def gain_over_bicubic(model_fields: dict, steps: int = 1000, scale: int = 2, learning_rate: float = 1e-3) -> float:
  """PSNR(model) - PSNR(bicubic) in dB on the held-out crop after ``steps`` steps of batch 8, 24-px LR patches."""
  config = test_cfg.get_config()
  config.model.update(scale=scale, **model_fields)
  config.train.update(learning_rate=learning_rate, num_steps=steps)
  images = datasets.load_source("skimage:astronaut", min_size=64)
  batches = input_pipeline.train_dataset(images, patch_size=24, scale=scale, global_batch=8,
                                         seed=0).as_numpy_iterator()
  tx, schedule = optim.make_optimizer(config.train)
  graphdef, params = nnx.split(registry.build_generator(config.model))
  state = state_lib.create_state(params, tx)
  loss = losses.GeneratorLoss((("l1", 1.0),))
  step = jax.jit(lambda s, b: train_step.train_step(s, b, {}, graphdef=graphdef, tx=tx, loss=loss,
                                                    learning_rate_fn=schedule))
  for _ in range(steps):
    state, _ = step(state, next(batches))
  hr = imresize.modcrop(datasets.load_source("skimage:coffee", min_size=64).get(0)[:160, :240], scale)
  lr = imresize.downscale_uint8(hr, scale)
  sr = np.asarray(train_step.predict(state.params, jnp.asarray(lr[None]), graphdef=graphdef))[0]
  bicubic = imresize.to_uint8(imresize.imresize(lr / 255.0, scale))
  return metrics.psnr(imresize.to_uint8(sr), hr, shave=scale) - metrics.psnr(bicubic, hr, shave=scale)
