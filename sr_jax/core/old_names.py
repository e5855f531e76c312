"""The module names from before the package was arranged in rooms by concern (December 2026), kept working.

``python -m sr_jax.upscale``, ``from sr_jax import eval_lib`` and ``import sr_jax.degradations.ops`` still work
in scripts written against the old names: a finder at the front of ``sys.meta_path`` (installed by
``sr_jax/__init__.py``) answers each old name with the module at its new place, the same module object (so a patch
or an isinstance check through either name agrees), and ``python -m OLD`` runs the new file's code. A moved
package's submodules follow it. The package's own code, tests and docs use the new names
(tests/test_structure.py checks that every import names a module that exists).
"""

import importlib
import importlib.abc
import importlib.machinery
import importlib.util

MOVED = {
  "sr_jax.errors": "sr_jax.core.errors",
  "sr_jax.atomic": "sr_jax.core.atomic",
  "sr_jax.download": "sr_jax.core.download",
  "sr_jax.locks": "sr_jax.core.locks",
  "sr_jax.native_logs": "sr_jax.core.native_logs",
  "sr_jax.weights_io": "sr_jax.core.weights_io",
  "sr_jax.image_io": "sr_jax.image.image_io",
  "sr_jax.color": "sr_jax.image.color",
  "sr_jax.imresize": "sr_jax.image.imresize",
  "sr_jax.dihedral": "sr_jax.image.dihedral",
  "sr_jax.datasets": "sr_jax.data.datasets",
  "sr_jax.div2k": "sr_jax.data.div2k",
  "sr_jax.paired": "sr_jax.data.paired",
  "sr_jax.benchmark_data": "sr_jax.data.benchmark_data",
  "sr_jax.input_pipeline": "sr_jax.data.input_pipeline",
  "sr_jax.degradations": "sr_jax.data.degradations",
  "sr_jax.run_dir": "sr_jax.workdir.run_dir",
  "sr_jax.checkpointing": "sr_jax.workdir.checkpointing",
  "sr_jax.checkpoint_io": "sr_jax.workdir.checkpoint_io",
  "sr_jax.train": "sr_jax.training.train",
  "sr_jax.train_step": "sr_jax.training.train_step",
  "sr_jax.state": "sr_jax.training.state",
  "sr_jax.optim": "sr_jax.training.optim",
  "sr_jax.train_config": "sr_jax.training.train_config",
  "sr_jax.train_workdir": "sr_jax.training.train_workdir",
  "sr_jax.config_lib": "sr_jax.training.config_lib",
  "sr_jax.eval_lib": "sr_jax.evaluation.eval_lib",
  "sr_jax.eval_report": "sr_jax.evaluation.eval_report",
  "sr_jax.error_maps": "sr_jax.evaluation.error_maps",
  "sr_jax.upscale_lib": "sr_jax.inference.upscale_lib",
  "sr_jax.export_lib": "sr_jax.inference.export_lib",
  "sr_jax.interpolation": "sr_jax.inference.interpolation",
  "sr_jax.model_zoo": "sr_jax.hub.model_zoo",
  "sr_jax.importers": "sr_jax.hub.importers",
  "sr_jax.main": "sr_jax.cli.train",
  "sr_jax.evaluate": "sr_jax.cli.evaluate",
  "sr_jax.upscale": "sr_jax.cli.upscale",
  "sr_jax.import_weights": "sr_jax.cli.import_weights",
  "sr_jax.fetch_data": "sr_jax.cli.fetch_data",
  "sr_jax.pretrained": "sr_jax.cli.pretrained",
  "sr_jax.export": "sr_jax.cli.export",
  "sr_jax.interpolate": "sr_jax.cli.interpolate",
}


def new_name(name: str) -> str | None:
  """The module an old name now is (a moved package's submodules included), or None."""
  head = name
  while head:
    if head in MOVED:
      return MOVED[head] + name[len(head):]
    head = head.rpartition(".")[0]
  return None


class _Alias(importlib.abc.Loader):
  """Loads an old name as the module at its new place; ``python -m`` gets that module's code."""

  def __init__(self, target: str):
    self.target = target

  def create_module(self, spec):
    return importlib.import_module(self.target)

  def exec_module(self, module):
    pass

  def get_code(self, fullname):
    return importlib.util.find_spec(self.target).loader.get_code(self.target)


class Finder:
  """A meta-path finder for the old names (nothing else: it returns None for any other name)."""

  @staticmethod
  def find_spec(name, path=None, target=None):
    if not name.startswith("sr_jax.") or (new := new_name(name)) is None:
      return None
    real = importlib.util.find_spec(new)
    if real is None:
      return None
    return importlib.machinery.ModuleSpec(name, _Alias(new), origin=real.origin,
                                          is_package=real.submodule_search_locations is not None)
