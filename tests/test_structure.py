"""The house rules, checked: every module in a room, imports down the floors and no cycles, inference and
evaluation without the training side, short functions, flags only in CLIs, function-level imports only for
optional heavy dependencies, installable console scripts, every package and data file in the wheel."""

import ast
import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKG = os.path.join(REPO, "sr_jax")
# Optional or heavy dependencies that may be imported inside a function (only where they are needed).
LAZY_OK = {"torch", "tensorflow", "tensorflow_datasets", "matplotlib", "matplotlib.pyplot", "jax2onnx", "onnxruntime",
           "jax.experimental"}  # jax.experimental: jax2tf, which imports TensorFlow.


def _modules() -> dict[str, ast.Module]:
  """Every module of the package, the shipped configs included (configs/ is installed as sr_jax.configs)."""
  out = {}
  for top, prefix in ((PKG, "sr_jax"), (os.path.join(REPO, "configs"), "sr_jax.configs")):
    for root, _, files in os.walk(top):
      for f in files:
        if f.endswith(".py"):
          rel = os.path.relpath(os.path.join(root, f), top)[:-3].replace(os.sep, ".")
          name = f"{prefix}.{rel}".removesuffix(".__init__")
          with open(os.path.join(root, f)) as fh:
            out[name] = ast.parse(fh.read())
  return out


MODULES = _modules()
CLIS = {m for m in MODULES if m.startswith("sr_jax.cli.")}  # Every console entry point (cli/__init__ runs them).


def _imports(tree: ast.Module) -> list[tuple[str, ast.AST]]:
  """(imported sr_jax module, node) for every import in the tree, at any depth."""
  out = []
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      out += [(a.name, node) for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module:
      for a in node.names:
        sub = f"{node.module}.{a.name}"
        out.append((sub if sub in MODULES else node.module, node))
  return out


def _graph() -> dict[str, set[str]]:
  return {name: {m for m, _ in _imports(tree) if m in MODULES and m != name} for name, tree in MODULES.items()}


def test_no_import_cycles_among_sr_jax_modules():
  graph, cycles = _graph(), []
  state: dict[str, int] = {}
  stack: list[str] = []

  def visit(node):
    state[node] = 1
    stack.append(node)
    for nxt in sorted(graph[node]):
      if state.get(nxt) == 1:
        cycles.append(stack[stack.index(nxt):] + [nxt])
      elif nxt not in state:
        visit(nxt)
    stack.pop()
    state[node] = 2

  for node in sorted(graph):
    if node not in state:
      visit(node)
  assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def _reachable(start: str) -> set[str]:
  graph, seen, todo = _graph(), set(), [start]
  while todo:
    node = todo.pop()
    if node not in seen:
      seen.add(node)
      todo += graph[node]
  return seen


# The rooms by floor, bottom to top. An import points down to a lower floor or stays in its own room; rooms on one
# floor are independent of each other (data, models and the shared networks; metrics and losses; evaluation,
# inference and the hub). Training sits above evaluation and the hub: it validates with the evaluator and starts from
# published weights. The shipped configs assemble training's config; the CLIs sit on top.
FLOORS = (("core",), ("image",), ("data", "models", "nets"), ("metrics", "losses"), ("workdir",),
          ("evaluation", "inference", "hub"), ("training",), ("configs",), ("cli",))
FLOOR = {room: level for level, rooms in enumerate(FLOORS) for room in rooms}


def _room(module: str) -> str | None:
  parts = module.split(".")
  return parts[1] if len(parts) > 1 and parts[1] in FLOOR else None


def test_every_module_lives_in_a_room():
  """No module at the package's top level but its __init__ (which installs the finders for old names)."""
  homeless = sorted(m for m in MODULES if m != "sr_jax" and _room(m) is None)
  assert not homeless, f"put these in one of the rooms {sorted(FLOOR)}: {homeless}"


def test_imports_run_down_the_floors():
  against = [f"{a} -> {b}" for a, deps in _graph().items() if a != "sr_jax" for b in sorted(deps)
             if _room(a) != _room(b) and FLOOR[_room(a)] <= FLOOR[_room(b)]]
  assert not against, "imports against the floors " + " < ".join("/".join(f) for f in FLOORS) + ": " + \
      "; ".join(against)


def _family(reached: set[str], *packages: str) -> set[str]:
  return {m for m in reached for p in packages if m == p or m.startswith(p + ".")}


def _in(*rooms: str) -> list[str]:
  return sorted(m for m in MODULES if _room(m) in rooms)


READERS = _in("inference", "hub", "workdir") + ["sr_jax.cli.upscale", "sr_jax.cli.export", "sr_jax.cli.pretrained",
                                                "sr_jax.cli.import_weights"]


@pytest.mark.parametrize("module", READERS)
def test_inference_and_the_hub_import_no_training_losses_degradations_or_optimiser(module):
  """sr-upscale and its siblings load a model and run it: none of the training side comes with them."""
  bad = _family(_reachable(module), "sr_jax.training", "sr_jax.losses", "sr_jax.data.degradations",
                "sr_jax.data.input_pipeline", "sr_jax.configs")
  assert not bad, sorted(bad)


@pytest.mark.parametrize("module", _in("evaluation") + ["sr_jax.cli.evaluate", "sr_jax.cli.interpolate"])
def test_evaluation_imports_no_training_losses_or_optimiser(module):
  """Evaluation may use the degradation functions (its test inputs), nothing else of training."""
  bad = _family(_reachable(module), "sr_jax.training", "sr_jax.losses", "sr_jax.data.input_pipeline",
                "sr_jax.configs")
  assert not bad, sorted(bad)


def test_every_package_is_in_the_wheel():
  """pyproject lists packages by hand (configs/ is mapped to sr_jax.configs): each folder of sr_jax must be there."""
  import tomllib
  with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
    listed = set(tomllib.load(f)["tool"]["setuptools"]["packages"])
  found = {"sr_jax.configs"} | {os.path.relpath(root, REPO).replace(os.sep, ".") for root, _, files in os.walk(PKG)
                                if "__init__.py" in files}
  assert listed == found, f"pyproject.toml [tool.setuptools] packages: add {sorted(found - listed)}, " \
      f"remove {sorted(listed - found)}"


def test_no_library_module_imports_a_shipped_config():
  """The defaults live with the parts that own each section (config_lib.defaults); configs/ only uses them."""
  shipped = {m for m in MODULES if m.startswith("sr_jax.configs.")}
  bad = {name: sorted(_graph()[name] & shipped) for name in MODULES
         if not name.startswith("sr_jax.configs") and _graph()[name] & shipped}
  assert not bad, bad


def test_functions_are_short():
  """At most 60 lines a function (configs aside); the training loop's story at most 90."""
  long = [f"{name}.{node.name}: {node.end_lineno - node.lineno + 1} lines"
          for name, tree in MODULES.items() if not name.startswith("sr_jax.configs")
          for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
          and node.end_lineno - node.lineno + 1 > 60 and node.name != "train_and_evaluate"]
  assert not long, long
  train = next(n for n in ast.walk(MODULES["sr_jax.training.train"])
               if isinstance(n, ast.FunctionDef) and n.name == "train_and_evaluate")
  assert train.end_lineno - train.lineno + 1 <= 90


def test_flags_are_defined_only_by_command_line_programs():
  definers = {name for name, tree in MODULES.items() for node in ast.walk(tree)
              if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr.startswith("DEFINE")}
  assert definers <= CLIS, definers - CLIS


def test_function_level_imports_are_only_optional_heavy_dependencies():
  bad = []
  for name, tree in MODULES.items():
    for fn in ast.walk(tree):
      if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
        for node in ast.walk(fn):
          if isinstance(node, ast.Import):
            bad += [f"{name}: import {a.name}" for a in node.names if a.name not in LAZY_OK]
          elif isinstance(node, ast.ImportFrom) and node.module not in LAZY_OK:
            bad.append(f"{name}: from {node.module} import ...")
  assert not bad, bad


def _script(name):
  path = shutil.which(name) or os.path.join(os.path.dirname(sys.executable), name)
  if not os.path.exists(path):
    if os.environ.get("CI"):
      pytest.fail(f"console script {name} is not installed (pip install -e .)")
    pytest.skip(f"console script {name} not installed; run pip install -e .")
  return path


def test_console_scripts_run_from_any_directory(tmp_path, data_dir):
  """Installed entry points work outside the repository: a shipped config by name, evaluation, upscaling."""
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH="")
  data_dir = os.path.abspath(data_dir)
  run = lambda *cmd: subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
  out = run(_script("sr-train"), "--config=test", "--workdir=run", "--config.train.num_steps=2",
            "--config.eval_every=2", "--config.checkpoint_every=2", "--config.train.num_devices=1")
  assert out.returncode == 0, out.stderr[-3000:]
  assert os.path.isdir(tmp_path / "run" / "checkpoints" / "2")
  out = run(_script("sr-evaluate"), "--workdir=run", f"--data_dir={data_dir}", "--datasets=Set5",
            "--heatmaps=none", "--nosheets")
  assert out.returncode == 0 and "| Set5 | x2 |" in out.stdout, out.stderr[-3000:]
  os.makedirs(tmp_path / "photos")
  shutil.copy(os.path.join(data_dir, "Set5", "bird.png"), tmp_path / "photos")
  out = run(_script("sr-upscale"), "--workdir=run", "--input=photos", "--output=up")
  assert out.returncode == 0 and os.path.exists(tmp_path / "up" / "bird_x2.png"), out.stderr[-3000:]


def test_every_data_file_the_package_reads_is_in_the_wheel():
  """pyproject's package-data globs cover sr_jax/assets/* (NIQE's parameters, the benchmark manifest)."""
  import fnmatch
  import tomllib
  with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
    globs = tomllib.load(f)["tool"]["setuptools"]["package-data"]["sr_jax"]
  assets = os.path.join(PKG, "assets")
  missing = [n for n in os.listdir(assets) if not any(fnmatch.fnmatch(f"assets/{n}", g) for g in globs)]
  assert not missing, f"add to [tool.setuptools.package-data] in pyproject.toml: {missing}"
