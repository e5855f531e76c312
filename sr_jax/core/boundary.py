"""How pytrees cross ``jax.jit`` without Python on the per-call path.

A jitted call flattens its pytree arguments and builds its pytree results on the host, every call. For a Flax
``nnx.State`` (nested dictionaries flattened by Python code) that is the largest part of a small step's host
time: the paper RDN's train state (904 arrays) costs ~19 ms per call through jax.jit on the 2-core CPU, its
leaves as a list ~8 ms, and one 1-D buffer per dtype ~1-3 ms (experiments/results/benchmarks.md, "Host cost of a
train-step call"). So:

- ``Packing``: a pytree of arrays as one buffer per dtype. ``packed(fn)`` turns ``fn(tree, *args) -> (tree,
  aux)`` into ``fn(buffers, *args) -> (buffers, aux)``, unpacking and packing inside the jit (static offsets,
  so the program is the step's own arithmetic plus slices and one concatenation per dtype). What the trainer
  carries from step to step.
- ``over_leaves(fn)``: ``fn(tree, *args)`` as a function of the tree's leaves (a list: flattened in C++) and its
  treedef (static). What the inference and validation calls take, whose weights do not change between calls.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp


class Packing:
  """A pytree of arrays (of a fixed structure, shapes and dtypes) as ``{dtype name: 1-D buffer}``.

  Built from the tree itself or its abstract shape (``jax.eval_shape``); ``pack`` and ``unpack`` are pure and
  meant to run inside a jit."""

  def __init__(self, tree: Any):
    leaves, self.treedef = jax.tree.flatten(tree)
    self.shapes = [tuple(x.shape) for x in leaves]
    self.groups: dict[str, list[int]] = {}  # dtype name -> indices of its leaves, in tree order.
    for i, x in enumerate(leaves):
      if not (jnp.issubdtype(x.dtype, jnp.number) or jnp.issubdtype(x.dtype, jnp.bool_)):
        raise TypeError(f"Packing: leaf {i} has dtype {x.dtype}, which cannot share a numeric buffer")
      self.groups.setdefault(jnp.dtype(x.dtype).name, []).append(i)

  def __len__(self) -> int:
    return len(self.shapes)

  def pack(self, tree: Any) -> dict[str, jax.Array]:
    leaves, treedef = jax.tree.flatten(tree)
    if treedef != self.treedef:
      raise ValueError(f"Packing.pack: the tree's structure changed: {treedef} (packing built for {self.treedef})")
    return {d: jnp.concatenate([jnp.ravel(leaves[i]) for i in idx]) for d, idx in self.groups.items()}

  def unpack(self, buffers: dict[str, jax.Array]) -> Any:
    leaves: list = [None] * len(self.shapes)
    for d, idx in self.groups.items():
      at = 0
      for i in idx:
        size = math.prod(self.shapes[i])
        leaves[i] = buffers[d][at:at + size].reshape(self.shapes[i])
        at += size
    return jax.tree.unflatten(self.treedef, leaves)

  def packed(self, fn: Callable[..., tuple[Any, Any]]) -> Callable[..., tuple[dict[str, jax.Array], Any]]:
    """``fn(tree, *args) -> (tree, aux)`` as ``(buffers, *args) -> (buffers, aux)`` (jit it, donating 0)."""

    @functools.wraps(fn)
    def on_buffers(buffers, *args, **kwargs):
      tree, aux = fn(self.unpack(buffers), *args, **kwargs)
      return self.pack(tree), aux
    return on_buffers


def over_leaves(fn: Callable) -> Callable:
  """``fn(tree, *args)`` as ``g(leaves, *args, treedef=...)``: jit ``g`` with ``static_argnames="treedef"`` and
  call it with ``jax.tree.flatten(tree)`` done once (the leaves list crosses the boundary in C++)."""

  def on_leaves(leaves, *args, treedef, **kwargs):  # No functools.wraps: jit reads this signature (treedef).
    return fn(jax.tree.unflatten(treedef, leaves), *args, **kwargs)
  return on_leaves
