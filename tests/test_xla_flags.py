"""core/xla_flags.py: the measured XLA:CPU flag is added for the jaxlib it was measured with, before JAX starts,
and never over a user's own setting."""

import importlib.metadata
import subprocess
import sys

from sr_jax.core import xla_flags

from programs import ENV, REPO

FLAG = "--xla_cpu_experimental_ynn_fusion_type"
MEASURED = xla_flags.CPU_FLAGS.get(importlib.metadata.version("jaxlib"), ())


def test_the_flag_is_added_for_the_measured_jaxlib_only_and_a_users_setting_wins():
  env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
  xla_flags.apply(env)
  assert env["XLA_FLAGS"] == " ".join(["--xla_force_host_platform_device_count=2", *MEASURED])
  xla_flags.apply(env)  # Once only.
  assert env["XLA_FLAGS"].count(FLAG) == (1 if MEASURED else 0)
  mine = {"XLA_FLAGS": f"{FLAG}=individual_convolution"}
  xla_flags.apply(mine)
  assert mine == {"XLA_FLAGS": f"{FLAG}=individual_convolution"}
  off = {xla_flags.ENV: "0"}
  xla_flags.apply(off)
  assert off == {xla_flags.ENV: "0"}
  assert xla_flags.CPU_FLAGS["0.10.2"] == (f"{FLAG}=-individual_convolution",)


def test_importing_sr_jax_sets_it_before_jax_compiles_and_the_backend_accepts_it():
  code = ("import os, sr_jax, jax, jax.numpy as jnp; x = jnp.ones((1, 8, 8, 4)); "
          "y = jax.lax.conv_general_dilated(x, jnp.ones((3, 3, 4, 2)), (1, 1), 'SAME', "
          "dimension_numbers=('NHWC', 'HWIO', 'NHWC')); print(float(y[0, 4, 4, 0]), os.environ['XLA_FLAGS'])")
  env = dict(ENV, XLA_FLAGS="")
  env.pop(xla_flags.ENV, None)
  out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  value, *flags = out.stdout.split()
  assert float(value) == 36.0 and flags == list(MEASURED)
