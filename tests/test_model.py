import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from sr_jax.configs import default
from sr_jax.models import rdn, registry


def test_paper_parameter_count():
  assert registry.count_params(default.get_config().model) == 22_123_395


def test_paper_flops_per_output_pixel():
  assert registry.flops_per_output_pixel(default.get_config().model) / 1e6 == pytest.approx(11.06, abs=0.01)


def test_registry_builds_from_config_and_names_unknown_architectures():
  cfg = default.get_config().model
  cfg.update(num_blocks=2, num_layers=2, growth=4, features=8)
  assert isinstance(registry.build_generator(cfg), rdn.RDN)
  assert registry.receptive_field(cfg) == rdn.receptive_field_radius(2, 2, 2)
  assert registry.identity(cfg)["model.growth"] == 4
  cfg.name = "srcnn"
  with pytest.raises(ValueError, match="config.model.name='srcnn'.*'rdn'"):
    registry.build_generator(cfg)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_output_shapes_any_size(scale):
  model = rdn.RDN(scale=scale, num_blocks=2, num_layers=2, growth=4, features=8, rngs=nnx.Rngs(0))
  for h, w in [(7, 9), (12, 5)]:
    out = model(jnp.zeros((2, h, w, 3)))
    assert out.shape == (2, h * scale, w * scale, 3) and out.dtype == jnp.float32


def test_paper_model_shapes_x3_x4():
  for scale in (3, 4):
    model = nnx.eval_shape(lambda: rdn.RDN(scale=scale, rngs=nnx.Rngs(0)))
    graphdef, state = nnx.split(model)
    out = jax.eval_shape(lambda s, x: nnx.merge(graphdef, s)(x), state, jax.ShapeDtypeStruct((1, 16, 20, 3),
                                                                                             jnp.float32))
    assert out.shape == (1, 16 * scale, 20 * scale, 3)


def test_pixel_shuffle_matches_pytorch_order():
  n, h, w, c, r = 1, 2, 3, 2, 3
  x = np.random.default_rng(0).normal(size=(n, h, w, c * r * r)).astype(np.float32)
  ref = np.zeros((n, h * r, w * r, c), np.float32)  # torch: out[c, h*r+i, w*r+j] = in[c*r*r + i*r + j, h, w]
  for ch in range(c):
    for i in range(r):
      for j in range(r):
        ref[:, i::r, j::r, ch] = x[..., ch * r * r + i * r + j]
  np.testing.assert_array_equal(np.asarray(rdn.pixel_shuffle(jnp.asarray(x), r)), ref)


def test_gray_model_and_bf16():
  model = rdn.RDN(scale=2, num_blocks=1, num_layers=2, growth=4, features=8, channels=1, dtype=jnp.bfloat16,
                  rngs=nnx.Rngs(0))
  out = model(jnp.ones((1, 6, 6, 1)))
  assert out.shape == (1, 12, 12, 1) and out.dtype == jnp.float32
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(nnx.state(model, nnx.Param)))


def test_receptive_field_bounds_influence():
  model = rdn.RDN(scale=2, num_blocks=2, num_layers=2, growth=4, features=8, rngs=nnx.Rngs(0))
  radius = rdn.receptive_field_radius(2, 2, 2)
  x = jnp.zeros((1, 31, 31, 3))
  base, pert = model(x), model(x.at[0, 15, 15].set(1.0))
  diff = np.abs(np.asarray(pert - base))[0].max(-1)
  ys, xs = np.nonzero(diff > 0)
  assert ys.size and (np.abs(ys // 2 - 15) <= radius).all() and (np.abs(xs // 2 - 15) <= radius).all()


def test_unsupported_scale():
  with pytest.raises(ValueError, match="scale 2, 3 or 4"):
    rdn.RDN(scale=5, num_blocks=1, num_layers=1, growth=4, features=4, rngs=nnx.Rngs(0))


@pytest.mark.parametrize("scale,channels", [(2, 3), (3, 1), (4, 3)])
def test_wide_layout_matches_batched_conv_forward_and_backward(scale, channels):
  """Batch folded into the width (zero separators) equals the batched convs, gradients included."""
  x = jnp.asarray(np.random.default_rng(0).random((3, 9, 7, channels)), jnp.float32)
  kw = dict(scale=scale, num_blocks=2, num_layers=3, growth=8, features=16, channels=channels)
  a = rdn.RDN(**kw, conv_impl="xla", rngs=nnx.Rngs(0))
  b = rdn.RDN(**kw, conv_impl="wide", rngs=nnx.Rngs(0))
  np.testing.assert_allclose(np.asarray(a(x)), np.asarray(b(x)), atol=1e-5)
  loss = lambda m: jnp.mean(jnp.square(m(x)))
  ga, gb = nnx.state(jax.grad(loss)(a)), nnx.state(jax.grad(loss)(b))
  jax.tree.map(lambda u, v: np.testing.assert_allclose(np.asarray(u), np.asarray(v), atol=1e-6, rtol=1e-4), ga, gb)
  with pytest.raises(ValueError, match="conv_impl"):
    rdn.RDN(**kw, conv_impl="winograd", rngs=nnx.Rngs(0))
