"""Sweeps as code: a sweep file defines BASE_CONFIG and ``sweep(add)``; this module expands and names them.

  BASE_CONFIG = "rdn_291_x2"

  def sweep(add):
    for overrides in product({"loss.l1": [1.0, 0.0]}, zip_({"model.num_blocks": [2, 4], "model.growth": [8, 16]})):
      add(**overrides)

``add(**{"train.learning_rate": 1e-3})`` adds one member; keys are config paths (dots), values plain Python.
Two optional keywords: ``label="L1 + VGG16 perceptual"`` names the member in reports and plots (the seed is
appended: "..., seed 1"), ``name="l1_ft"`` sets its folder (default: made from the overrides). A string value may
name another member's workdir as ``{root}/NAME`` (e.g. ``"train.init_from": "{root}/l1"``): the launcher fills in
the sweep root and starts that member only after NAME has finished.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import re
from typing import Any, Iterator, NamedTuple

from sr_jax.core import errors

ROOT = "{root}"
_REF = re.compile(re.escape(ROOT) + r"/([^/]+)")


class Member(NamedTuple):
  name: str  # Folder under the sweep root.
  label: str  # For tables and legends.
  overrides: dict[str, Any]

  def resolved(self, root: str) -> dict[str, Any]:
    """The overrides with ``{root}`` replaced by the sweep root."""
    return {k: v.replace(ROOT, root) if isinstance(v, str) else v for k, v in self.overrides.items()}

  def needs(self) -> list[str]:
    """Names of the members whose workdirs this one reads (``{root}/NAME`` values)."""
    return [m for v in self.overrides.values() if isinstance(v, str) for m in _REF.findall(v)]


def product(*grids) -> Iterator[dict[str, Any]]:
  """Every combination: each argument is a grid {key: [values]} or an iterable of override dicts (zip_)."""
  parts = [list(_one_grid(g)) if isinstance(g, dict) else list(g) for g in grids]
  for combo in itertools.product(*parts):
    merged: dict[str, Any] = {}
    for d in combo:
      merged.update(d)
    yield merged


def _one_grid(grid: dict[str, list]) -> Iterator[dict[str, Any]]:
  keys = list(grid)
  for values in itertools.product(*(grid[k] for k in keys)):
    yield dict(zip(keys, values))


def zip_(grid: dict[str, list]) -> Iterator[dict[str, Any]]:
  """The i-th values of every key together (all lists must have the same length)."""
  lengths = {len(v) for v in grid.values()}
  if len(lengths) > 1:
    raise ValueError(f"zip_ needs lists of one length, got {({k: len(v) for k, v in grid.items()})}")
  keys = list(grid)
  for values in zip(*(grid[k] for k in keys)):
    yield dict(zip(keys, values))


def load(path: str) -> tuple[str, list[Member]]:
  """(base config name, members) of a sweep file."""
  if not os.path.exists(path):
    raise FileNotFoundError(f"sweep file {path} does not exist")
  spec = importlib.util.spec_from_file_location("sweep_" + re.sub(r"\W", "_", path), path)
  module = importlib.util.module_from_spec(spec)
  _run_user_code(path, spec.loader.exec_module, module)
  for attr in ("BASE_CONFIG", "sweep"):
    if not hasattr(module, attr):
      raise ValueError(f"sweep file {path} defines no {attr}")
  members: list[Member] = []

  def add(label: str | None = None, name: str | None = None, **overrides):
    name = name or member_name(overrides)
    if label and "seed" in overrides:
      label = f"{label}, seed {overrides['seed']}"
    members.append(Member(name, label or name, overrides))

  _run_user_code(path, module.sweep, add)
  if not members:
    raise ValueError(f"sweep file {path} added no members")
  names = [m.name for m in members]
  dup = {n for n in names if names.count(n) > 1}
  if dup:
    raise ValueError(f"sweep file {path} adds the same member twice: {sorted(dup)}")
  for i, m in enumerate(members):
    missing = [n for n in m.needs() if n not in names[:i]]
    if missing:
      raise ValueError(f"sweep file {path}: member {m.name} reads {ROOT}/{missing[0]}, which is not a member "
                       "added before it")
  return module.BASE_CONFIG, members


def _run_user_code(path: str, fn, *args) -> None:
  """``fn(*args)``; an error raised in the sweep file itself (a syntax error, a NameError, ...) becomes one line
  naming the file and line (``errors.in_user_file``; the traceback is its cause, shown with --verbose)."""
  try:
    fn(*args)
  except Exception as e:  # noqa: BLE001  (only errors located in the user's file are rewritten)
    located = errors.in_user_file(e, path, "sweep file")
    if located is None:
      raise
    raise located from e


def member_name(overrides: dict[str, Any]) -> str:
  """A folder name from the overrides: 'loss.l1=1.0, model.growth=8' -> 'l1=1.0,growth=8'."""
  if not overrides:
    return "base"
  parts = [f"{k.split('.')[-1]}={v}" for k, v in overrides.items()]
  return re.sub(r"[^A-Za-z0-9=.,_+-]", "_", ",".join(parts))


def command_line(base_config: str, workdir: str, overrides: dict[str, Any], python: str = "python"
                 ) -> list[str]:
  return [python, "-m", "sr_jax.cli.train", f"--config={base_config}", f"--workdir={workdir}",
          *(f"--config.{k}={v}" for k, v in overrides.items())]
