"""SRVGGNetCompact: BasicSR's architecture (golden outputs of its own code: tests/golden/srvgg_reference.py), the
published models' parameter counts, odd sizes, tiled == whole, training with every loss, ONNX export, and the
importer's refusals."""

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import arch_checks
from sr_jax.configs import default
from sr_jax.hub import importers
from sr_jax.hub.importers import basicsr_srvgg, common
from sr_jax.inference import upscaler
from sr_jax.models import registry
from sr_jax.training import config_lib
from sr_jax.workdir import run_dir

GOLDEN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")
sys.path.insert(0, GOLDEN_DIR)
import srvgg_reference as ref  # noqa: E402  (the golden's own weights and inputs)


def _cfg(**kw):
  m = default.get_config().model
  m.update(name="srvgg", scale=4, num_blocks=16, features=64)
  m.update(**kw)
  return m


def test_published_parameter_counts_and_flops():
  assert registry.count_params(_cfg()) == 621_424  # realesr-animevideov3 (the ncnn .bin holds exactly these).
  assert registry.count_params(_cfg(num_blocks=32)) == 1_213_296  # realesr-general-x4v3.
  rrdb = _cfg(name="rrdbnet", num_blocks=23, growth=32)
  assert 28 < registry.flops_per_output_pixel(rrdb) / registry.flops_per_output_pixel(_cfg()) < 30
  assert registry.receptive_field(_cfg()) == 18


@pytest.mark.parametrize("case", sorted(ref.CASES))
def test_reproduces_basicsr_srvggnetcompact(tmp_path, case):
  golden = np.load(os.path.join(GOLDEN_DIR, "srvgg_reference.npz"))[case]
  c = ref.CASES[case]
  sd = ref.state_dict(case)
  m = _cfg(scale=c["upscale"], num_blocks=c["num_conv"], features=c["num_feat"], activation=c["act_type"])
  if c["act_type"] == "prelu":  # Through the importer, as a user would.
    np.savez(tmp_path / "w.npz", **{f"params.{k}": v for k, v in sd.items()})  # Real-ESRGAN keeps 'params'.
    arch = importers.import_to_workdir(str(tmp_path / "w.npz"), str(tmp_path / "run"))
    assert arch == {k: m[k] for k in ("scale", "features", "channels", "activation", "num_blocks")} | {"name": "srvgg"}
    run = run_dir.load_run(str(tmp_path / "run"), "latest")
    graphdef, params = run.graphdef, run.params
  else:  # A LeakyReLU network has no tensors that say so: filled directly.
    graphdef, template = nnx.split(registry.build_generator(m))
    params = common.fill(sd, basicsr_srvgg.name_map(dict(m)), template, 1.0, "test")
  out = np.asarray(nnx.merge(graphdef, params)(jnp.asarray(ref.inputs().transpose(0, 2, 3, 1))))
  np.testing.assert_allclose(out.transpose(0, 3, 1, 2), golden, rtol=1e-4, atol=1e-4 * np.abs(golden).max())


def test_importer_refuses_what_it_cannot_represent():
  sd = ref.state_dict("x4_prelu")
  no_prelu = {k: v for k, v in sd.items() if v.ndim != 1 or k.endswith("bias")}
  with pytest.raises(common.LayoutError, match="no PReLU slopes"):
    basicsr_srvgg.infer_architecture(no_prelu)
  gap = dict(sd)
  gap["body.5.weight"] = gap.pop("body.4.weight")
  with pytest.raises(common.LayoutError, match="one at every even index"):
    basicsr_srvgg.infer_architecture(gap)
  wrong = dict(sd)
  wrong["body.8.weight"] = wrong["body.8.weight"][:47]
  with pytest.raises(common.LayoutError, match="not 3 x s"):
    basicsr_srvgg.infer_architecture(wrong)


def test_odd_sizes_and_tiled_equals_whole():
  m = _cfg(scale=3, num_blocks=2, features=8)
  graphdef, params = nnx.split(registry.build_generator(m, seed=3))
  rng = np.random.default_rng(0)  # The last conv starts at zero (output = nearest-neighbour's): randomise it.
  params = jax.tree.map(lambda p: p + 0.1 * rng.standard_normal(p.shape).astype(p.dtype), params)
  lr = rng.integers(0, 256, (23, 37, 3), dtype=np.uint8)
  whole = upscaler.Upscaler(graphdef, params, m)(lr)
  assert whole.shape == (69, 111, 3)
  tiled = upscaler.Upscaler(graphdef, params, m, tile=5)(lr)
  np.testing.assert_allclose(tiled, whole, atol=1e-5)
  short = upscaler.Upscaler(graphdef, params, m, tile=5, overlap=1)(lr)  # Less than the receptive field: seams.
  assert np.abs(short - whole).max() > 1e-4


def test_trains_with_every_loss(lpips_weights):
  config_kw = dict(name="srvgg", num_blocks=2, features=8)
  _, moved = arch_checks.step_with_every_loss(config_kw, scale=4)
  assert len(moved) == 2 * 4 + 3 and all(d > 0 for d in moved)  # 4 convs (kernel, bias), 3 PReLU slopes.


@pytest.mark.parametrize("case", ["x2_prelu", "x1_prelu"])
def test_onnx_export_equals_jax(tmp_path, case):
  pytest.importorskip("jax2onnx")
  np.savez(tmp_path / "w.npz", **ref.state_dict(case))
  importers.import_to_workdir(str(tmp_path / "w.npz"), str(tmp_path / "run"))
  assert arch_checks.onnx_equals_jax(str(tmp_path / "run"), tmp_path) < 1e-4


def test_config_checks_the_activation(test_config):
  test_config.model.update(name="srvgg", activation="gelu")
  with pytest.raises(config_lib.ConfigError, match="model.activation='gelu'"):
    config_lib.validate(test_config)


def test_a_deep_network_keeps_its_signal_starts_at_nearest_and_its_first_layer_learns():
  """realesr-general-x4v3's size (32 convs of 64): with PyTorch's default init the body's output vanished (~1e-13)
  and a from-scratch run never left nearest-neighbour up-sampling; with a random last conv it shrank its body back
  to nearest-neighbour's. Now the body keeps its signal, the output starts at exactly nearest-neighbour's, and
  after the step that moves the last conv off zero the first layer's Adam step is about the learning rate."""
  from sr_jax.configs import test as test_cfg
  from sr_jax.training import state as state_lib, train_step
  config = test_cfg.get_config()
  config.model.update(name="srvgg", scale=4, num_blocks=32, features=64)
  model = registry.build_generator(config.model)
  x = jnp.asarray(np.random.default_rng(0).uniform(0, 1, (2, 16, 16, 3)), jnp.float32)
  np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(jnp.repeat(jnp.repeat(x, 4, 1), 4, 2)))
  h, first = x, None
  for i, conv in enumerate(model.convs[:-1]):
    h = model._activate(i, conv(h))
    first = float(jnp.std(h)) if first is None else first
  assert 0.1 < float(jnp.std(h)) / first < 10
  config.train.update(batch_size=2, learning_rate=1e-3, warmup_steps=0)
  opt = state_lib.Optimizers.from_config(config)
  step, frozen = train_step.build(config, opt)
  state = jax.jit(state_lib.init_fn(config, opt))()
  rng = np.random.default_rng(1)
  batch = {"lr": rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8),
           "hr": rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)}
  kernel = lambda s, i: np.asarray(s.params["convs"][i % len(model.convs)]["kernel"][...])
  step = jax.jit(step)
  one, _ = step(state, batch, frozen)
  two, _ = step(one, batch, frozen)
  assert np.abs(kernel(one, -1)).min() > 0 and np.array_equal(kernel(one, 0), kernel(state, 0))
  assert np.median(np.abs(kernel(two, 0) - kernel(one, 0))) > 0.3e-3  # ~lr where the gradient is above Adam's eps.


def test_a_tiny_same_size_run_beats_its_degraded_input_on_a_held_out_image(tmp_path):
  """Scale 1 trains end to end: Real-ESRGAN degradations at the same size, validated on a held-out photo against
  the degraded input itself (the 'bicubic' of a scale-1 run: a resize by 1 is the identity)."""
  import json
  from sr_jax.configs import quickstart_realesrgan
  from sr_jax.training import train
  config = quickstart_realesrgan.get_config()
  config.model.update(name="srvgg", scale=1, num_blocks=4, features=16, activation="prelu")
  config.train.update(num_steps=80, batch_size=8, num_devices=1, learning_rate=1e-3)
  config.data.update(degradation_workers=0, max_val_images=1, patch_size=32, val="skimage:chelsea")
  config.update(log_every=80, eval_every=80, checkpoint_every=80, val_metrics="psnr,ssim")
  train.train_and_evaluate(config, str(tmp_path / "run"))
  result = json.load(open(tmp_path / "run" / "validation.json"))["history"][-1]["sets"]["chelsea"]
  assert result["psnr"] > result["bicubic_psnr"] + 0.1, result  # bicubic_psnr: the degraded input's own PSNR.


def test_a_same_size_model_is_not_scored_on_clean_images(data_dir):
  from sr_jax.evaluation import eval_report
  with pytest.raises(eval_report.datasets.DataError, match="at x1: a same-size model is scored on degraded inputs"):
    next(eval_report.iter_pairs("Set5", 1, data_dir, []))
