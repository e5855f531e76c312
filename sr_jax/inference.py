"""Upscaling whole images with a trained RDN: full-image or tiled (seam-free), optional x8 self-ensemble.

Tiling: the image is covered by windows of one fixed size (``tile + 2 * overlap`` LR pixels, so one compiled
shape serves every tile), clamped inside the image so a window only ever holds real pixels. Each window
contributes its core, at least ``overlap`` pixels away from any window edge that is not an image edge. With
``overlap`` >= the model's receptive-field radius every output pixel sees exactly the context it sees in
full-image inference, so tiled equals full to float precision. Windows run in batches of ``batch_size``.
"""

from __future__ import annotations

import functools
import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from sr_jax import checkpointing, dihedral, image_io, train_step
from sr_jax.models import rdn


class Upscaler:
  """``upscaler(lr_uint8 HxWxC) -> float HR image in [0, 1] (unclipped)``."""

  def __init__(self, graphdef: nnx.GraphDef, params, model_cfg: ml_collections.ConfigDict, *, tile: int = 0,
               overlap: int | None = None, batch_size: int = 4, self_ensemble: bool = False,
               progress: bool = False):
    self.graphdef, self.params = graphdef, params
    self.scale = model_cfg.scale
    self.channels = model_cfg.channels
    self.receptive_field = rdn.receptive_field_radius(model_cfg.num_blocks, model_cfg.num_layers,
                                                      model_cfg.scale)
    self.tile = tile
    self.overlap = self.receptive_field if overlap is None else overlap
    self.batch_size = batch_size
    self.self_ensemble = self_ensemble
    self.progress = progress
    self._predict = jax.jit(functools.partial(train_step.predict, graphdef=graphdef))

  def _run(self, batch: np.ndarray) -> np.ndarray:
    return np.asarray(self._predict(self.params, jnp.asarray(batch)))

  def _full(self, lr: np.ndarray) -> np.ndarray:
    return self._run(lr[None])[0]

  def _tiled(self, lr: np.ndarray) -> np.ndarray:
    h, w = lr.shape[:2]
    s, m = self.scale, self.overlap
    win_h, win_w = min(h, self.tile + 2 * m), min(w, self.tile + 2 * m)
    if win_h == h and win_w == w:
      return self._full(lr)
    jobs = []  # (window top/left, core top/left, core size)
    for cy in range(0, h, self.tile):
      for cx in range(0, w, self.tile):
        ch, cw = min(self.tile, h - cy), min(self.tile, w - cx)
        wy = int(np.clip(cy - m, 0, h - win_h))
        wx = int(np.clip(cx - m, 0, w - win_w))
        jobs.append((wy, wx, cy, cx, ch, cw))
    out = np.zeros((h * s, w * s, self.channels), np.float32)
    chunks = range(0, len(jobs), self.batch_size)
    if self.progress and len(chunks) > 1:
      from tqdm import tqdm
      chunks = tqdm(chunks, desc="tiles", unit="batch", leave=False)
    for i in chunks:
      chunk = jobs[i:i + self.batch_size]
      windows = np.stack([lr[wy:wy + win_h, wx:wx + win_w] for wy, wx, *_ in chunk])
      if len(chunk) < self.batch_size:  # Pad to the compiled batch size.
        windows = np.concatenate([windows, np.repeat(windows[-1:], self.batch_size - len(chunk), 0)])
      preds = self._run(windows)
      for (wy, wx, cy, cx, ch, cw), pred in zip(chunk, preds):
        oy, ox = (cy - wy) * s, (cx - wx) * s
        out[cy * s:(cy + ch) * s, cx * s:(cx + cw) * s] = pred[oy:oy + ch * s, ox:ox + cw * s]
    return out

  def _once(self, lr: np.ndarray) -> np.ndarray:
    return self._tiled(lr) if self.tile > 0 else self._full(lr)

  def __call__(self, lr: np.ndarray) -> np.ndarray:
    if lr.ndim == 2:
      lr = lr[..., None]
    if self.channels == 3 and lr.shape[-1] == 1:
      lr = np.repeat(lr, 3, axis=-1)
    elif self.channels == 1 and lr.shape[-1] == 3:
      lr = image_io.rgb_to_gray_uint8(lr)
    if not self.self_ensemble:
      return self._once(lr)
    outs = [dihedral.invert(self._once(np.ascontiguousarray(dihedral.apply(lr, k))), k) for k in range(8)]
    return np.mean(outs, axis=0)


def load_run(workdir: str, step: int | str = "best", *, bf16: bool = False
             ) -> tuple[ml_collections.ConfigDict, nnx.GraphDef, object, int]:
  """(config, graphdef, params, step) of a training workdir; ``step`` is 'best', 'latest' or a number."""
  from sr_jax import train  # Late import: train pulls in tf.data.
  config_path = os.path.join(workdir, "config.json")
  if not os.path.exists(config_path):
    raise FileNotFoundError(f"{workdir} is not a training workdir (no config.json)")
  with open(config_path) as f:
    config = ml_collections.ConfigDict(json.load(f))
  if bf16:
    config.model.dtype = "bfloat16"
  ckpt = checkpointing.Checkpointer(workdir, keep=10**6, async_save=False)
  try:
    steps = ckpt.all_steps()
    if not steps:
      raise FileNotFoundError(f"{workdir} has no checkpoints")
    step = _pick_step(workdir, steps, step)
    init = train.state_initializer(config)[0]
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device),
                            jax.eval_shape(init))
    try:
      state, _ = ckpt.restore(step, abstract)
    except Exception as e:
      raise ValueError(f"checkpoint {ckpt.directory}/{step} does not match the model in {config_path} "
                       f"(architecture or scale mismatch): {e}") from e
  finally:
    ckpt.close()
  graphdef = nnx.graphdef(nnx.eval_shape(lambda: train.build_model(config.model, config.seed)))
  return config, graphdef, state.params, step


def split_checkpoint_path(path: str) -> tuple[str, str]:
  """'WORKDIR/checkpoints/STEP' -> (WORKDIR, STEP); any other path is a workdir -> (path, 'best')."""
  path = os.path.normpath(path)
  parent = os.path.dirname(path)
  if os.path.basename(parent) == "checkpoints" and os.path.basename(path).isdigit():
    return os.path.dirname(parent), os.path.basename(path)
  return path, "best"


def _pick_step(workdir: str, steps: list[int], step: int | str) -> int:
  if step == "latest":
    return max(steps)
  if step == "best":
    val = os.path.join(workdir, "validation.json")
    if os.path.exists(val):
      with open(val) as f:
        best = json.load(f).get("best")
      if best and best["step"] in steps:
        return int(best["step"])
    return max(steps)
  if int(step) not in steps:
    raise ValueError(f"{workdir} has no checkpoint at step {step}; available: {sorted(steps)}")
  return int(step)
