"""Put on PYTHONPATH by tests/test_tf_free.py: in this process TensorFlow (and tensorflow_datasets) is not found,
as on a machine without it (the GPU image): ``importlib.util.find_spec('tensorflow')`` is None and ``import
tensorflow`` raises ModuleNotFoundError."""

import importlib.machinery
import sys

BLOCKED = ("tensorflow", "tensorflow_datasets")


class _PathFinderWithoutTensorFlow(importlib.machinery.PathFinder):

  @classmethod
  def find_spec(cls, name, path=None, target=None):
    if name.split(".")[0] in BLOCKED:
      return None
    return super().find_spec(name, path, target)


sys.meta_path[:] = [_PathFinderWithoutTensorFlow if f is importlib.machinery.PathFinder else f for f in sys.meta_path]
