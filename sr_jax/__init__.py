"""sr_jax: single-image super-resolution in JAX/Flax.

The shipped experiment configs live at the repository's top level (``configs/``, the Flax examples' layout) and
are the subpackage ``sr_jax.configs``: an installed sr_jax (``pip install .`` or ``-e .``) has them there
(pyproject.toml maps the folder); a source checkout used without installing (``PYTHONPATH=.``, as on the GPU
machine) finds them through the finder below.

The package is arranged in rooms by concern (docs/layout.md); the module names from before that move keep working
through ``core/old_names.py``'s finder, installed here.
"""

import importlib.util as _util
import os as _os
import sys as _sys

from sr_jax.core import old_names as _old_names, xla_flags as _xla_flags

_xla_flags.apply()  # Measured XLA:CPU flags, before JAX starts its backend (core/xla_flags.py).

_TOP_CONFIGS = _os.path.join(_os.path.dirname(_os.path.dirname(_os.path.abspath(__file__))), "configs")


class _CheckoutConfigs:
  """``sr_jax.configs`` is the checkout's ``configs/`` (its modules follow through the package's __path__)."""

  @staticmethod
  def find_spec(name, path=None, target=None):
    if name != "sr_jax.configs":
      return None
    return _util.spec_from_file_location(name, _os.path.join(_TOP_CONFIGS, "__init__.py"),
                                         submodule_search_locations=[_TOP_CONFIGS])


if not _os.path.isdir(_os.path.join(__path__[0], "configs")) and _os.path.isfile(
    _os.path.join(_TOP_CONFIGS, "__init__.py")):
  _sys.meta_path.append(_CheckoutConfigs)

if _old_names.Finder not in _sys.meta_path:
  _sys.meta_path.insert(0, _old_names.Finder)
