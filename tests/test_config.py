

import importlib
import os
import re
import subprocess
import sys
import types

import jax.numpy as jnp
import pytest

from programs import error_lines, REPO, run_module
from sr_jax import configs
from sr_jax.training import config_lib, train


@pytest.mark.parametrize("name", configs.names())
def test_shipped_configs_validate(name):
  config = importlib.import_module(f"sr_jax.configs.{name}").get_config()
  assert config_lib.validate(config, num_devices=1) is None  # Raises ConfigError when a value is invalid.
  assert config.is_locked is False and set(config) >= {"model", "data", "loss", "train", "seed"}
  with pytest.raises(config_lib.ConfigError, match="train.batch_size"):
    config.train.batch_size = 0
    config_lib.validate(config, num_devices=1)


def test_default_is_the_paper_setup():
  from sr_jax.configs import default
  c = default.get_config()
  assert (c.model.num_blocks, c.model.num_layers, c.model.growth, c.model.features) == (16, 8, 64, 64)
  assert (c.train.batch_size, c.data.patch_size, c.loss.l1, c.train.learning_rate) == (16, 48, 1.0, 1e-4)
  assert (c.train.lr_decay_steps, c.train.lr_decay_factor) == (200_000, 0.5)


@pytest.mark.parametrize("key,value,match", [
    ("model.scale", 5, "model.scale=5"),
    ("data.patch_size", 0, "data.patch_size"),
    ("train.batch_size", -1, "train.batch_size"),
    ("train.lr_schedule", "linear", "train.lr_schedule"),
    ("data.train", "s3:bucket", "config.data.train"),
    ("loss.l1", 0.0, r"config.loss=.*at least one weight > 0"),
    ("data.degradation_workers", -2, "data.degradation_workers=-2"),
    ("model.rdbs_per_block", 0, "model.rdbs_per_block=0"),
])
def test_impossible_values_name_the_key(test_config, key, value, match):
  section, field = key.split(".")
  test_config[section][field] = value
  with pytest.raises(config_lib.ConfigError, match=match):
    config_lib.validate(test_config, num_devices=1)


def test_batch_not_divisible_by_devices(test_config):
  test_config.train.batch_size = 6
  with pytest.raises(config_lib.ConfigError, match="multiple of the 4 devices"):
    config_lib.validate(test_config, num_devices=4)


def _run_main(*args):
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
  return subprocess.run([sys.executable, "-m", "sr_jax.cli.train", "--config=test", *args],
                        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_cli_rejects_unknown_and_ill_typed_overrides(tmp_path):
  out = _run_main(f"--workdir={tmp_path}", "--config.model.scael=2")
  assert out.returncode != 0 and "scael" in out.stderr
  out = _run_main(f"--workdir={tmp_path}", "--config.train.batch_size=lots")
  assert out.returncode != 0 and "batch_size" in out.stderr
  assert not os.path.exists(tmp_path / "checkpoints")


@pytest.mark.parametrize("where", ["repository", "elsewhere"])
def test_both_config_spellings_work_from_the_repository_and_elsewhere(tmp_path, where):
  """configs/ sits at the top level and is installed as sr_jax.configs: a name or a path, from any directory."""
  repo = REPO
  cwd = repo if where == "repository" else str(tmp_path)
  path = "configs/test.py" if where == "repository" else os.path.join(repo, "configs", "test.py")
  for spec in ("test", path):
    out = subprocess.run([sys.executable, "-m", "sr_jax.cli.train", f"--config={spec}", f"--workdir={tmp_path / 'w'}",
                          "--config.train.num_steps=0"], capture_output=True, text=True, cwd=cwd)
    assert out.returncode != 0 and "config.train.num_steps=0 is invalid" in out.stderr, (spec, out.stderr[-800:])


def test_a_checkout_without_installing_finds_the_top_level_configs():
  repo = REPO
  code = ("import sys; sys.meta_path = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]; "
          "sys.path = [p for p in sys.path if '__editable__' not in p]; "
          f"sys.path.insert(0, {repo!r}); from sr_jax.configs import quickstart; print(quickstart.__file__)")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
  assert out.returncode == 0 and out.stdout.strip() == os.path.join(repo, "configs", "quickstart.py"), out.stderr


def test_non_finite_config_numbers_are_refused_and_a_nan_stop_says_when_no_checkpoint_exists():
  from sr_jax.configs import test as test_cfg
  for key, value in (("train.learning_rate", float("inf")), ("loss.l1", float("nan")),
                     ("train.grad_clip", float("inf"))):
    config = test_cfg.get_config()
    config.update_from_flattened_dict({key: value})
    with pytest.raises(config_lib.ConfigError, match=rf"config.{key}={value}: not a finite number"):
      config_lib.validate(config)
  state = types.SimpleNamespace(first_bad_step=jnp.asarray(4))
  for latest, said in ((None, "No checkpoint was written (it stopped before the first save)"),
                       (3, "The last good checkpoint (step 3) is kept in D")):
    ckpt = types.SimpleNamespace(latest_step=lambda v=latest: v, directory="D")
    with pytest.raises(train.NonFiniteLossError, match=rf"NaN/Inf at step 4; stopping. {re.escape(said)}"):
      train.check_finite(state, ckpt)


def test_a_config_or_sweep_file_that_fails_is_one_line_naming_file_and_line(tmp_path):
  cases = {"syntax.py": ("def get_config(:\n  pass\n", "line 1: SyntaxError: invalid syntax"),
           "name.py": ("def get_config():\n  return undefined\n",
                       "line 2 (in get_config): NameError: name 'undefined' is not defined")}
  for name, (text, want) in cases.items():
    (tmp_path / name).write_text(text)
    res = run_module("sr_jax.cli.train", f"--config={tmp_path / name}", f"--workdir={tmp_path / 'w'}")
    errs = error_lines(res.stderr)
    assert res.returncode == 1 and len(errs) == 1, res.stderr[-3000:]
    assert f"config file {tmp_path / name} {want}" in errs[0], errs
  (tmp_path / "sweep.py").write_text('BASE_CONFIG = "test"\ndef sweep(add)\n  add()\n')
  (tmp_path / "sweep2.py").write_text('BASE_CONFIG = "test"\ndef sweep(add):\n  add(**{"a": missing})\n')
  for name, want in (("sweep.py", "line 2: SyntaxError: expected ':'"),
                     ("sweep2.py", "line 3 (in sweep): NameError: name 'missing' is not defined")):
    res = run_module("experiments.launch", str(tmp_path / name), f"--root={tmp_path / 'r'}", "--dry_run")
    errs = error_lines(res.stderr)
    assert res.returncode == 1 and len(errs) == 1 and f"sweep file {tmp_path / name} {want}" in errs[0], res.stderr
