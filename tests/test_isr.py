"""idealo ISR's RDN and RRDN: the importer against ISR's Keras model definitions, built here layer by layer as
ISR's ``models/rdn.py`` (upscaling='ups') and ``models/rrdn.py`` build them, with random weights saved the way
Keras ``save_weights`` writes ``.hdf5`` files."""

import h5py
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from sr_jax.hub import importers
from sr_jax.hub.importers import isr as isr_importer
from sr_jax.models import isr, registry
from sr_jax.workdir import run_dir

keras = pytest.importorskip("tensorflow").keras
tf = pytest.importorskip("tensorflow")
L = keras.layers


def _conv(filters, name, k=3):
  return L.Conv2D(filters, k, padding="same", name=name)


def keras_isr_rdn(C, D, G, G0, x, c=3):
  """ISR's RDN (``_build_rdn`` with ``_UPN`` and the 'ups' up-sampling block)."""
  inp = keras.Input((None, None, c), name="LR")
  f_m1 = _conv(G0, "F_m1")(inp)
  rdb_in, concat = _conv(G0, "F_0")(f_m1), []
  for d in range(1, D + 1):
    h = rdb_in
    for k in range(1, C + 1):
      h = L.Concatenate(axis=3)([h, L.Activation("relu")(_conv(G, f"F_{d}_{k}")(h))])
    rdb_in = L.Add()([_conv(G0, f"LFF_{d}", 1)(h), rdb_in])
    concat.append(rdb_in)
  gff = _conv(G0, "GFF_2")(_conv(G0, "GFF_1", 1)(L.Concatenate(axis=3)(concat)))
  h = L.Add()([gff, f_m1])
  h = L.Activation("relu")(_conv(64, "UPN1", 5)(h))
  h = L.Activation("relu")(_conv(32, "UPN2")(h))
  h = L.UpSampling2D(size=x)(_conv(c * x * x, "UPN3")(h))
  return keras.Model(inp, _conv(c, "SR")(h))


def keras_isr_rrdn(C, D, G, G0, T, x, c=3, beta=0.2):
  """ISR's RRDN (``_build_rdn`` with ``_RRDB``, ``_dense_block`` and the depth-to-space up-sampling)."""
  inp = keras.Input((None, None, c), name="LR_input")
  pre = _conv(G0, "Pre_blocks_conv")(inp)
  h = pre
  for t in range(1, T + 1):
    block_in = h
    for d in range(1, D + 1):
      y = h
      for k in range(1, C + 1):
        y = L.Concatenate(axis=3)([y, L.Activation("relu")(_conv(G, f"F_{t}_{d}_{k}")(y))])
      h = L.Add()([h, _conv(G0, f"LFF_{t}_{d}")(y) * beta])
    h = L.Add()([block_in, h * beta])
  h = L.Add()([_conv(G0, "post_blocks_conv")(h), pre])
  h = L.Lambda(lambda v: tf.nn.depth_to_space(v, block_size=x, data_format="NHWC"))(_conv(c * x * x, "PreShuffle")(h))
  return keras.Model(inp, _conv(c, "SR")(h))


def _randomise_and_save(model, path, prefix=""):
  """Random weights (non-zero biases), written in Keras 2's HDF5 layout: <layer>/<layer>/kernel:0."""
  rng = np.random.default_rng(0)
  with h5py.File(path, "w") as f:
    for layer in model.layers:
      if not isinstance(layer, L.Conv2D):
        continue
      k, b = layer.get_weights()
      k = rng.uniform(-1, 1, k.shape).astype(np.float32) / np.sqrt(np.prod(k.shape[:3]))
      b = (0.05 * rng.standard_normal(b.shape)).astype(np.float32)
      layer.set_weights([k, b])
      f[f"{prefix}{layer.name}/{layer.name}/kernel:0"] = k
      f[f"{prefix}{layer.name}/{layer.name}/bias:0"] = b


CASES = {
    "rdn_x2": (lambda: keras_isr_rdn(C=2, D=3, G=8, G0=6, x=2),
               dict(name="isr_rdn", scale=2, num_blocks=3, num_layers=2, growth=8, features=6, channels=3)),
    "rdn_x3": (lambda: keras_isr_rdn(C=3, D=2, G=4, G0=8, x=3),
               dict(name="isr_rdn", scale=3, num_blocks=2, num_layers=3, growth=4, features=8, channels=3)),
    "rrdn_x4": (lambda: keras_isr_rrdn(C=2, D=3, G=4, G0=8, T=2, x=4),
                dict(name="isr_rrdn", scale=4, num_blocks=2, rdbs_per_block=3, num_layers=2, growth=4,
                     features=8, channels=3)),
    "rrdn_x2": (lambda: keras_isr_rrdn(C=3, D=2, G=8, G0=6, T=1, x=2),
                dict(name="isr_rrdn", scale=2, num_blocks=1, rdbs_per_block=2, num_layers=3, growth=8,
                     features=6, channels=3)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_isr_import_equals_keras(tmp_path, case):
  build, arch = CASES[case]
  model = build()
  path = str(tmp_path / "w.hdf5")
  _randomise_and_save(model, path, prefix="model_weights/" if case == "rdn_x3" else "")
  assert importers.import_to_workdir(path, str(tmp_path / "run")) == arch
  run = run_dir.load_run(str(tmp_path / "run"), "latest")
  x = np.random.default_rng(1).random((2, 9, 11, 3)).astype(np.float32)  # Odd sizes.
  ref = np.asarray(model(x))
  got = np.asarray(nnx.merge(run.graphdef, run.params)(jnp.asarray(x)))
  assert got.shape == ref.shape == (2, 9 * arch["scale"], 11 * arch["scale"], 3)
  np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_isr_architectures_count_and_tile_like_the_registry_says():
  from sr_jax.configs import default
  cfg = default.get_config().model
  cfg.update(name="isr_rdn", scale=2, num_blocks=20, num_layers=6, growth=64, features=64)
  assert registry.count_params(cfg) > 0 and registry.receptive_field(cfg) == 20 * 6 + 8
  cfg.update(name="isr_rrdn", scale=4, num_blocks=10, rdbs_per_block=3, num_layers=4, growth=32, features=32)
  assert registry.receptive_field(cfg) == 10 * 3 * 5 + 4 and registry.flops_per_output_pixel(cfg) > 0


def test_tf_depth_to_space_order_is_permuted_to_pixel_shuffle():
  x = np.random.default_rng(0).random((1, 2, 3, 12)).astype(np.float32)
  ref = tf.nn.depth_to_space(x, 2).numpy()
  got = np.asarray(isr.rdn.pixel_shuffle(jnp.asarray(x[..., isr_importer.tf_to_torch_shuffle_order(3, 2)]), 2))
  np.testing.assert_array_equal(got, ref)


def test_isr_shuffle_variant_and_other_files_are_refused(tmp_path):
  model = keras_isr_rdn(C=1, D=1, G=4, G0=4, x=2)
  sd = {f"{l.name}.kernel": l.get_weights()[0] for l in model.layers if isinstance(l, L.Conv2D)}
  sd["SR.kernel"] = np.zeros((3, 3, 3, 3), np.float32)  # upscaling='shuffle': SR sees 3 channels.
  with pytest.raises(ValueError, match="upscaling='shuffle'"):
    isr_importer.infer_architecture(sd)
