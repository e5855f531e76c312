"""Real-ESRGAN's U-Net discriminator with spectral norm equals BasicSR's (golden:
tests/golden/unet_discriminator_reference.py), in eval mode and after one power iteration."""

import os
import sys

import jax.numpy as jnp
import numpy as np
from flax import nnx

from sr_jax.models import unet_discriminator

GOLDEN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")
sys.path.insert(0, GOLDEN_DIR)
import unet_discriminator_reference as ref  # noqa: E402

_PATHS = {"conv0": ("conv0",), "conv9": ("conv9",), **{f"conv{i + 1}": ("down", i) for i in range(3)},
          **{f"conv{i + 4}": ("up", i) for i in range(3)}, **{f"conv{i + 7}": ("extra", i) for i in range(2)}}


def _model_from_torch(sd: dict) -> unet_discriminator.UNetDiscriminatorSN:
  model = unet_discriminator.UNetDiscriminatorSN(features=ref.FEATURES, rngs=nnx.Rngs(0))
  for name, path in _PATHS.items():
    layer = model
    for p in path:
      layer = layer[p] if isinstance(p, int) else getattr(layer, p)
    if name in ref.SN:
      layer.kernel[...] = jnp.asarray(sd[f"{name}.weight_orig"].transpose(2, 3, 1, 0))
      layer.u[...], layer.v[...] = jnp.asarray(sd[f"{name}.weight_u"]), jnp.asarray(sd[f"{name}.weight_v"])
    else:
      layer.kernel[...] = jnp.asarray(sd[f"{name}.weight"].transpose(2, 3, 1, 0))
      layer.bias[...] = jnp.asarray(sd[f"{name}.bias"])
  return model


def test_equals_basicsr_in_eval_mode_and_after_a_power_iteration():
  golden = np.load(os.path.join(GOLDEN_DIR, "unet_discriminator_reference.npz"))
  model = _model_from_torch(ref.state_dict())
  x = jnp.asarray(ref.inputs().transpose(0, 2, 3, 1))
  for mode, update in (("eval", False), ("train", True)):
    out = np.asarray(model(x, update=update)).transpose(0, 3, 1, 2)
    scale = np.abs(golden[mode]).max()
    np.testing.assert_allclose(out, golden[mode], atol=1e-4 * scale, err_msg=mode)
  np.testing.assert_allclose(np.asarray(model.down[0].u[...]), golden["conv1_u_after"], atol=1e-5)


def test_params_and_spectral_state_are_separate():
  model = unet_discriminator.UNetDiscriminatorSN(features=4, rngs=nnx.Rngs(1))
  params = nnx.state(model, nnx.Param)
  stats = nnx.state(model, unet_discriminator.SpectralState)
  assert len(nnx.to_flat_state(stats)) == 16  # u and v of 8 layers.
  assert not any("u" == p[-1] or "v" == p[-1] for p, _ in nnx.to_flat_state(params))
  out = model(jnp.zeros((1, 24, 16, 3)))
  assert out.shape == (1, 24, 16, 1)
