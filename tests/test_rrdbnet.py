"""RRDBNet: BasicSR's architecture (golden outputs of its own code: tests/golden/rrdbnet_reference.py), the
Real-ESRGAN x4plus parameter count, odd input sizes, tiled == whole, and the importer for both key layouts."""

import os
import sys

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from sr_jax.configs import default
from sr_jax.hub import importers
from sr_jax.hub.importers import basicsr_rrdbnet
from sr_jax.inference import upscaler
from sr_jax.models import registry, rrdbnet
from sr_jax.workdir import run_dir

GOLDEN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")
sys.path.insert(0, GOLDEN_DIR)
import rrdbnet_reference as ref  # noqa: E402  (the golden's own weights and inputs)


def _cfg(**kw):
  m = default.get_config().model
  m.update(name="rrdbnet", scale=4, num_blocks=23, growth=32, features=64)
  m.update(**kw)
  return m


def test_real_esrgan_x4plus_parameter_count():
  assert registry.count_params(_cfg()) == 16_697_987


def _save(sd, path, old_layout=False):
  if old_layout:  # The original ESRGAN repository's names.
    rename = {"conv_first": "model.0", "conv_up1": "model.3", "conv_up2": "model.6", "conv_hr": "model.8",
              "conv_last": "model.10", "conv_body": "model.1.sub.2"}
    out = {}
    for k, v in sd.items():
      module, leaf = k.rsplit(".", 1)
      if module.startswith("body."):
        _, i, rdb, conv = module.split(".")
        module = f"model.1.sub.{i}.RDB{rdb[-1]}.conv{conv[-1]}.0"
      out[f"{rename.get(module, module)}.{leaf}"] = v
    sd = out
  np.savez(path, **sd)


@pytest.mark.parametrize("case,old_layout", [("x4", False), ("x2", False), ("x1", False), ("x4", True)])
def test_imported_weights_reproduce_basicsr_rrdbnet(tmp_path, case, old_layout):
  golden = np.load(os.path.join(GOLDEN_DIR, "rrdbnet_reference.npz"))[case]
  path = str(tmp_path / "w.npz")
  _save(ref.state_dict(case), path, old_layout)
  arch = importers.import_to_workdir(path, str(tmp_path / "run"))
  c = ref.CASES[case]
  assert arch == dict(name="rrdbnet", scale=c["scale"], num_blocks=c["num_block"], growth=c["num_grow_ch"],
                      features=c["num_feat"], channels=3)
  run = run_dir.load_run(str(tmp_path / "run"), "latest")
  x = ref.inputs(case).transpose(0, 2, 3, 1)
  out = np.asarray(nnx.merge(run.graphdef, run.params)(jnp.asarray(x))).transpose(0, 3, 1, 2)
  assert out.shape == golden.shape
  np.testing.assert_allclose(out, golden, rtol=1e-4, atol=1e-4 * np.abs(golden).max())


@pytest.mark.parametrize("scale", [2, 1])
def test_odd_sizes_and_tiled_equals_whole(scale):
  m = _cfg(scale=scale, num_blocks=1, growth=4, features=8)
  graphdef, params = nnx.split(registry.build_generator(m, seed=3))
  lr = np.random.default_rng(0).integers(0, 256, (23, 37, 3), dtype=np.uint8)  # Odd: padded for the unshuffle.
  whole = upscaler.Upscaler(graphdef, params, m)(lr)
  assert whole.shape == (23 * scale, 37 * scale, 3)
  tiled = upscaler.Upscaler(graphdef, params, m, tile=8)(lr)
  np.testing.assert_allclose(tiled, whole, atol=1e-5)
  assert registry.receptive_field(m) >= 2 * (2 + 15) and rrdbnet.unshuffle_factor(2) == 2
  with pytest.raises(ValueError, match="scale 1, 2 or 4"):
    rrdbnet.unshuffle_factor(3)


def test_scale_3_is_refused_by_the_config_check(test_config):
  from sr_jax.training import config_lib
  test_config.model.update(name="rrdbnet", scale=3)
  with pytest.raises(config_lib.ConfigError, match="model.scale=3 .*1, 2, 4 for model.name='rrdbnet'"):
    config_lib.validate(test_config)


def test_scale_1_needs_inputs_degraded_at_the_same_size(test_config):
  from sr_jax.training import config_lib
  test_config.model.update(name="rrdbnet", scale=1)
  with pytest.raises(config_lib.ConfigError, match="model.scale=1 with config.data.degradation='bicubic'.*"
                                                   "identity.*data.degradation='realesrgan'"):
    config_lib.validate(test_config)
  test_config.data.degradation = "realesrgan"
  config_lib.validate(test_config)


def test_a_same_size_rrdbnet_exports_as_a_saved_model_equal_to_jax(tmp_path):
  """Scale 1 unshuffles by 4 after a reflect pad of constant size: the SavedModel takes any height and width
  (export's own check, an odd 37x29 image, < 1e-4); ONNX is refused with the reason (jax2onnx's conversion)."""
  from sr_jax.inference import export_lib
  _save(ref.state_dict("x1"), str(tmp_path / "w.npz"), False)
  importers.import_to_workdir(str(tmp_path / "w.npz"), str(tmp_path / "run"))
  assert export_lib.export(str(tmp_path / "run"), "saved_model", str(tmp_path / "sm"), "latest") < 1e-4
  with pytest.raises(ValueError, match="RRDBNet x1 .* use --format=saved_model"):
    export_lib.export(str(tmp_path / "run"), "onnx", str(tmp_path / "m.onnx"), "latest")
