"""The mmagic / mmediting RDN importer against mmagic's own RDNNet (golden outputs made with PyTorch by
tests/golden/mmagic_rdn_reference.py)."""

import os

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from sr_jax.hub import importers
from sr_jax.hub.importers import mmagic_rdn
from sr_jax.workdir import run_dir

GOLDEN = os.path.join(os.path.dirname(__file__), "golden", "mmagic_rdn_reference.npz")


def _case(case):
  with np.load(GOLDEN) as z:
    sd = {k.split("/", 1)[1]: z[k] for k in z.files if k.startswith(f"{case}/generator.")}
    return sd, z[f"{case}/input"], z[f"{case}/output"]


@pytest.mark.parametrize("case,scale", [("x2", 2), ("x3", 3), ("x4", 4)])
def test_mmagic_rdn_import_equals_mmagic(tmp_path, case, scale):
  sd, x, ref = _case(case)
  # A restorer checkpoint flattened ('state_dict.generator.*') for one case, plain generator names for another.
  prefix = "state_dict." if case == "x3" else ""
  sd["discriminator.conv.weight"] = np.zeros((1, 1, 1, 1), np.float32)  # Other modules are ignored.
  np.savez(tmp_path / "rdn.npz", **{prefix + k: v for k, v in sd.items()})
  arch = importers.import_to_workdir(str(tmp_path / "rdn.npz"), str(tmp_path / "run"))
  assert arch == dict(name="rdn", scale=scale, num_blocks=2, num_layers=3, growth=8, features=8, channels=3)
  run = run_dir.load_run(str(tmp_path / "run"), "latest")
  got = np.asarray(nnx.merge(run.graphdef, run.params)(jnp.asarray(x.transpose(0, 2, 3, 1))))
  ref = ref.transpose(0, 2, 3, 1)
  assert got.shape == ref.shape
  np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_mmagic_rdn_with_a_wider_upsampler_is_refused():
  sd, _, _ = _case("x2")
  sd = {k: v for k, v in sd.items()}
  sd["generator.rdbs.0.layers.0.conv.weight"] = np.zeros((4, 8, 3, 3), np.float32)
  with pytest.raises(ValueError, match="channel_growth 4 != mid_channels 8"):
    mmagic_rdn.infer_architecture(sd)
