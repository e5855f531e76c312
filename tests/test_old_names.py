"""core/old_names.py: the module names from before the package was arranged in rooms keep working, as the same
module objects, for imports, patches and ``python -m``; the package's own code uses only the new names."""

import ast
import importlib
import os
import subprocess
import sys

import pytest

import sr_jax
from sr_jax.core import old_names

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


LIBRARY = sorted(o for o, n in old_names.MOVED.items() if not n.startswith("sr_jax.cli."))
PROGRAMS = sorted(o for o, n in old_names.MOVED.items() if n.startswith("sr_jax.cli."))  # Each defines flags.


@pytest.mark.parametrize("old", LIBRARY)
def test_an_old_name_is_the_module_at_its_new_place(old):
  assert importlib.import_module(old) is importlib.import_module(old_names.MOVED[old])


def test_a_moved_packages_submodules_follow_it_and_from_imports_agree():
  import sr_jax.degradations.ops as old_ops
  from sr_jax.data.degradations import ops
  from sr_jax.importers import ncnn as old_ncnn
  from sr_jax.hub.importers import ncnn
  from sr_jax import eval_lib
  from sr_jax.evaluation import eval_lib as new_eval_lib
  assert old_ops is ops and old_ncnn is ncnn and eval_lib is new_eval_lib


def test_a_patch_through_the_old_name_is_seen_through_the_new(monkeypatch):
  from sr_jax.core import atomic
  monkeypatch.setattr("sr_jax.atomic.NAME_MAX", 7, raising=False)
  assert atomic.NAME_MAX == 7


def test_the_old_upscaler_module_names_resolve_from_the_inference_package():
  from sr_jax import inference
  from sr_jax.inference import upscaler
  assert inference.Upscaler is upscaler.Upscaler and inference.parse_tile("auto") == "auto"
  with pytest.raises(AttributeError, match="no attribute 'nothing'"):
    inference.nothing  # noqa: B018


def test_the_finder_answers_only_old_names():
  assert old_names.Finder.find_spec("sr_jax.training.train") is None
  assert old_names.Finder.find_spec("numpy") is None
  assert old_names.Finder.find_spec("sr_jax.no_such_module") is None
  assert old_names.new_name("sr_jax.importers.ncnn") == "sr_jax.hub.importers.ncnn"
  assert sys.meta_path.count(old_names.Finder) == 1 and sr_jax


def test_python_dash_m_with_an_old_name_runs_the_program():
  """Every old program name runs its program (one interpreter: --helpfull of each, as `python -m OLD` would)."""
  code = ("import runpy, sys\n"
          "for old in sys.argv[1:]:\n"
          "  sys.argv = [old, '--help']\n"
          "  try:\n"
          "    runpy.run_module(old, run_name='__main__', alter_sys=True)\n"
          "  except SystemExit as e:\n"
          "    assert e.code in (0, None), (old, e.code)\n"
          "  from absl import flags\n"
          "  flags.FLAGS.__dict__['__flags'].clear()\n"
          "  print('ran', old)\n")
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
  out = subprocess.run([sys.executable, "-c", code, *PROGRAMS], capture_output=True, text=True, env=env,
                       timeout=600, cwd=REPO)
  assert out.returncode == 0, out.stderr[-3000:]
  assert out.stdout.count("ran ") == len(PROGRAMS) == 8, out.stdout


def _sr_jax_imports(path):
  with open(path) as f:
    tree = ast.parse(f.read())
  for node in ast.walk(tree):
    if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "sr_jax":
      yield node.module, [a.name for a in node.names]
    elif isinstance(node, ast.Import):
      yield from ((a.name, []) for a in node.names if a.name.split(".")[0] == "sr_jax")


def _exists(module):
  base = os.path.join(REPO, *module.split("."))
  if module.startswith("sr_jax.configs"):
    base = os.path.join(REPO, "configs", *module.split(".")[2:])
  return os.path.isfile(base + ".py") or os.path.isfile(os.path.join(base, "__init__.py"))


def test_the_code_the_tests_and_the_experiments_use_only_the_new_names():
  old = []
  for top in ("sr_jax", "tests", "experiments", "configs"):
    for root, _, files in os.walk(os.path.join(REPO, top)):
      for f in files:
        if not f.endswith(".py") or f == "test_old_names.py":
          continue
        path = os.path.join(root, f)
        for module, names in _sr_jax_imports(path):
          if not _exists(module):
            old.append(f"{os.path.relpath(path, REPO)}: {module}")
          old += [f"{os.path.relpath(path, REPO)}: {module}.{n}" for n in names if f"{module}.{n}" in old_names.MOVED]
  assert not old, old
