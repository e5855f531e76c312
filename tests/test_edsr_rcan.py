"""EDSR and RCAN: equal to BasicSR's and EDSR-PyTorch's own modules (golden outputs: tests/golden/
edsr_rcan_reference.py), the papers' parameter counts, both importers and their refusals, tiling, bf16, every
loss, ONNX export, and a short run that beats bicubic on an image it never saw."""

import os
import sys

import numpy as np
import pytest
from flax import nnx

import arch_checks
from sr_jax.configs import default
from sr_jax.hub import importers
from sr_jax.hub.importers import common
from sr_jax.inference import upscaler
from sr_jax.models import registry
from sr_jax.training import config_lib
from sr_jax.workdir import run_dir

GOLDEN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")
sys.path.insert(0, GOLDEN_DIR)
import edsr_rcan_reference as ref  # noqa: E402  (the golden's weights and inputs)

GOLDEN = np.load(os.path.join(GOLDEN_DIR, "edsr_rcan_reference.npz"))
CASES = sorted(ref.BASICSR | ref.EDSR_PYTORCH)


def _model(**kw):
  m = default.get_config().model
  m.update(**kw)
  return m


def _weights(tmp_path, case: str, transform=lambda sd: sd) -> str:
  path = str(tmp_path / f"{case}.npz")
  np.savez(path, **transform(ref.state_dict(GOLDEN, case, ref.seed(case))))
  return path


def _res_scale(case: str):
  """The res_scale a case was built with when it is not what the importer assumes (it is not in the weights)."""
  return 0.1 if "res0.1" in case else 0.5 if "res0.5" in case else None


def test_paper_parameter_counts_equal_the_references():
  edsr = _model(name="edsr", scale=4, num_blocks=32, features=256, res_scale=0.1)
  rcan = _model(name="rcan", scale=4, num_groups=10, num_blocks=20, features=64, squeeze=16)
  assert registry.count_params(edsr) == int(GOLDEN["params/edsr_x4"]) == 43_089_923  # The paper: 43M.
  assert registry.count_params(_model(name="edsr", scale=2, num_blocks=16, features=64)) == int(
      GOLDEN["params/edsr_baseline_x2"])
  assert registry.count_params(rcan) == int(GOLDEN["params/rcan_x4"]) == 15_592_355  # The paper: ~16M.
  assert registry.receptive_field(rcan) > registry.receptive_field(edsr) == 69
  assert 3 < registry.flops_per_output_pixel(edsr) / registry.flops_per_output_pixel(rcan) < 3.3


@pytest.mark.parametrize("case", CASES)
def test_reproduces_the_reference(tmp_path, case):
  """Through the importer, as a user would; 1e-5 of the output's range."""
  config, graphdef, params = importers.read_model(_weights(tmp_path, case), overrides={"res_scale": _res_scale(case)})
  assert config.model.name == ("rcan" if "rcan" in case else "edsr")
  golden = GOLDEN[f"{case}/output"]
  np.testing.assert_allclose(arch_checks.run_nchw(graphdef, params, ref.inputs()), golden, rtol=0, atol=1e-5 * np.abs(golden).max())


def test_import_to_a_workdir_reads_the_architecture_off_the_tensors(tmp_path):
  arch = importers.import_to_workdir(_weights(tmp_path, "edsrpt_rcan_x3"), str(tmp_path / "run"))
  assert arch == dict(name="rcan", scale=3, num_groups=2, num_blocks=2, features=16, channels=3, squeeze=4,
                      res_scale=1.0)
  run = run_dir.load_run(str(tmp_path / "run"), "latest")
  golden = GOLDEN["edsrpt_rcan_x3/output"]
  np.testing.assert_allclose(arch_checks.run_nchw(run.graphdef, run.params, ref.inputs()), golden, atol=1e-5 * np.abs(golden).max())
  arch = importers.import_to_workdir(_weights(tmp_path, "basicsr_edsr_x4"), str(tmp_path / "edsr"))
  assert arch == dict(name="edsr", scale=4, num_blocks=3, features=8, channels=3, res_scale=1.0)


def test_edsr_pytorch_weights_of_another_pixel_range(tmp_path):
  """A network trained on [0, 1] pixels (--rgb_range=1): the mean shifts say so; refused until the range is given,
  then exact (EDSR is positively homogeneous: its biases scale with the range)."""
  def to_range_1(sd):
    return {k: (v / 255 if k.endswith("bias") else v) for k, v in sd.items()}
  path = _weights(tmp_path, "edsrpt_edsr_x4", to_range_1)
  with pytest.raises(common.LayoutError, match=r"sub_mean.bias .* pass --rgb_range=1\b"):
    importers.read_model(path)
  _, graphdef, params = importers.read_model(path, rgb_range=1.0)
  golden = GOLDEN["edsrpt_edsr_x4/output"]
  np.testing.assert_allclose(arch_checks.run_nchw(graphdef, params, ref.inputs()), golden, atol=1e-5 * np.abs(golden).max())
  with pytest.raises(common.LayoutError, match="channel attention cannot be rescaled"):
    importers.read_model(_weights(tmp_path, "edsrpt_rcan_x3", to_range_1), rgb_range=1.0)


def test_importers_refuse_what_they_cannot_represent(tmp_path):
  with pytest.raises(common.LayoutError, match="model.res_scale cannot be set for a EDSR-PyTorch EDSR/RCAN rcan"):
    importers.read_model(_weights(tmp_path, "edsrpt_rcan_x3"), overrides={"res_scale": 0.1})
  def std_not_one(sd):
    return {**sd, "sub_mean.weight": sd["sub_mean.weight"] * 2}
  with pytest.raises(common.LayoutError, match="sub_mean.weight is not the identity"):
    importers.read_model(_weights(tmp_path, "edsrpt_edsr_x4", std_not_one))
  def drop_block(sd):
    return {k: v for k, v in sd.items() if not k.startswith("body.1.residual_group.2.")}
  with pytest.raises(common.LayoutError, match="same number of RCABs"):
    importers.read_model(_weights(tmp_path, "basicsr_rcan_x4_res0.5", drop_block))
  def x8(sd):
    return {**sd, "upsample.0.weight": np.zeros((64,) + sd["upsample.0.weight"].shape[1:], np.float32)}
  with pytest.raises(common.LayoutError, match=r"not x2 \(4F\), x3 \(9F\) or x4"):
    importers.read_model(_weights(tmp_path, "basicsr_edsr_x2", x8))


def test_edsr_tiled_equals_whole_and_bf16_is_close():
  m = _model(name="edsr", scale=3, num_blocks=2, features=8)
  graphdef, params = nnx.split(registry.build_generator(m, seed=3))
  lr = np.random.default_rng(0).integers(0, 256, (23, 37, 3), dtype=np.uint8)
  whole = upscaler.Upscaler(graphdef, params, m)(lr)
  assert whole.shape == (69, 111, 3)
  np.testing.assert_allclose(upscaler.Upscaler(graphdef, params, m, tile=8)(lr), whole, atol=1e-5)
  assert np.abs(upscaler.Upscaler(graphdef, params, m, tile=8, overlap=1)(lr) - whole).max() > 1e-4  # Seams.
  bf16 = _model(**{**m.to_dict(), "dtype": "bfloat16"})
  half = upscaler.Upscaler(registry.generator_graphdef(bf16), params, bf16)(lr)
  assert np.abs(half.astype(np.float32) - whole).mean() < 1.0  # Mean 8-bit level difference.


@pytest.mark.parametrize("name", ["edsr", "rcan"])
def test_trains_with_every_loss(name, lpips_weights):
  _, moved = arch_checks.step_with_every_loss(dict(name=name, num_blocks=1, features=8, num_groups=1, squeeze=4,
                                                   dtype="bfloat16"))
  assert all(d > 0 for d in moved)


def test_onnx_export_equals_jax(tmp_path):
  pytest.importorskip("jax2onnx")
  importers.import_to_workdir(_weights(tmp_path, "basicsr_rcan_x2"), str(tmp_path / "run"))
  assert arch_checks.onnx_equals_jax(str(tmp_path / "run"), tmp_path) < 1e-4


@pytest.mark.parametrize("name", ["edsr", "rcan"])
def test_a_short_run_beats_bicubic_on_an_unseen_image(name):
  gain = arch_checks.gain_over_bicubic(dict(name=name, num_blocks=2, features=16, num_groups=2, squeeze=4))
  assert gain > 0.3, gain  # Measured: +0.77 dB (EDSR), +0.82 dB (RCAN) after 1000 steps.


def test_config_checks_the_new_fields(test_config):
  test_config.model.update(name="rcan", features=24, squeeze=16)
  with pytest.raises(config_lib.ConfigError, match="model.squeeze=16 .* a divisor of model.features=24"):
    config_lib.validate(test_config)
  test_config.model.update(name="edsr", res_scale=0.0)
  with pytest.raises(config_lib.ConfigError, match="model.res_scale=0.0"):
    config_lib.validate(test_config)


def test_the_registry_fetches_edsr_releases_over_a_loopback_server(tmp_path, monkeypatch):
  import dataclasses
  import functools
  import http.server
  import threading
  from sr_jax.core import download
  from sr_jax.core.errors import DataError
  from sr_jax.hub import model_zoo
  srv = tmp_path / "srv"
  srv.mkdir()
  path = _weights(srv, "edsrpt_edsr_x2_res0.1")  # EDSR-PyTorch layout, x2, as edsr_baseline_x2 is.
  monkeypatch.setenv("SR_JAX_CACHE", str(tmp_path / "cache"))
  handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(srv))
  server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
  threading.Thread(target=server.serve_forever, daemon=True).start()
  try:
    url = f"http://127.0.0.1:{server.server_port}/{os.path.basename(path)}"
    with pytest.raises(DataError, match="expected sha256 1bc95232"):  # Not the published file: refused.
      model_zoo.fetch("edsr_baseline_x2", str(tmp_path / "a"), url=url, progress=False)
    entry = dataclasses.replace(model_zoo.ZOO["edsr_baseline_x2"], sha256=download.sha256(path)[:8],
                                url=model_zoo.ZOO["edsr_baseline_x2"].url.rsplit("/", 1)[0] + "/x.npz")
    monkeypatch.setitem(model_zoo.ZOO, "edsr_baseline_x2", entry)
    fields, _ = model_zoo.fetch("edsr_baseline_x2", str(tmp_path / "a"), url=url, progress=False)
    assert fields == dict(name="edsr", scale=2, num_blocks=2, features=8, channels=3, res_scale=1.0)
    with pytest.raises(DataError, match="does not match the published 4f62e9ef"):  # A user's copy: checked too.
      model_zoo.fetch("edsr_x4", str(tmp_path / "b"), file=path)
  finally:
    server.shutdown()
