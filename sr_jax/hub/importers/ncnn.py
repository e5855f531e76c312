"""ncnn models (``MODEL.param`` + ``MODEL.bin``: Tencent ncnn's format, the Real-ESRGAN authors' own conversions
of RRDBNet and SRVGGNetCompact) read into BasicSR's tensor names, which ``basicsr_rrdbnet`` / ``basicsr_srvgg``
then import like a ``.pth``.

``.param`` is text: the magic 7767517, "layer_count blob_count", then one line per layer
(``type name n_in n_out inputs... outputs... key=value...``; a key <= -23300 holds an array ``n,v1,...,vn`` for
key -23300 - k). In ``.bin``, layers' weights follow one another in the file's layer order: a Convolution's
kernel is a 4-byte tag (0x01306B47: fp16 values, padded to 4 bytes; 0 or 0x0002C056: fp32) then
``weight_data_size`` values in PyTorch's OIHW order, its bias (``5=1``) raw fp32 without a tag; a PReLU's
slopes raw fp32. The reader accounts for every byte of ``.bin`` and refuses what sr_jax cannot represent
exactly (int8 or table-quantised weights, strided/dilated/unpadded convolutions, unknown layer types, a graph
that is neither network), naming the layer.

The architecture is recognised from the layer graph: the layer types with their parameters, in file order
(``Split``/``Input`` aside), must equal the sequence the recognised network exports to, the way the
Real-ESRGAN authors' converter writes it.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from sr_jax.hub.importers.common import LayoutError

MAGIC = 7767517
EXTENSION = ".param"
_FP16, _INT8, _FP32_SCALED = 0x01306B47, 0x000D4B38, 0x0002C056
_NO_WEIGHTS = ("Input", "Split", "Concat", "Eltwise", "BinaryOp", "Interp", "PixelShuffle")


@dataclasses.dataclass
class Layer:
  type: str
  name: str
  inputs: list[str]
  outputs: list[str]
  params: dict  # int key -> int, float or list of numbers.
  line: int

  def get(self, key: int, default=0):
    return self.params.get(key, default)


def _number(text: str):
  return float(text) if any(c in text for c in ".eE") else int(text)


def parse_param(path: str) -> list[Layer]:
  """The layers of a ``.param`` file; raises LayoutError naming the file and line of what it cannot parse."""
  try:
    with open(path, encoding="ascii") as f:
      lines = [ln.split() for ln in f]
  except (OSError, UnicodeDecodeError) as e:
    raise LayoutError(f"cannot read {path} as an ncnn .param file ({type(e).__name__}: {e})") from e
  if not lines or lines[0] != [str(MAGIC)]:
    raise LayoutError(f"{path} is not an ncnn .param file (its first line is not the magic {MAGIC}); a binary "
                      ".param (.param.bin) or another format cannot be read")
  try:
    layer_count, _ = (int(v) for v in lines[1])
  except (IndexError, ValueError):
    raise LayoutError(f"{path}: line 2 must be 'layer_count blob_count'") from None
  layers = []
  for number, fields in enumerate(lines[2:], start=3):
    if not fields:
      continue
    try:
      n_in, n_out = int(fields[2]), int(fields[3])
      ins, outs = fields[4:4 + n_in], fields[4 + n_in:4 + n_in + n_out]
      params = {}
      for kv in fields[4 + n_in + n_out:]:
        key, value = kv.split("=", 1)
        key = int(key)
        if key <= -23300:  # An array: count, then the values.
          values = [_number(v) for v in value.split(",")]
          params[-key - 23300] = values[1:1 + values[0]]
        else:
          params[key] = _number(value)
    except (IndexError, ValueError):
      raise LayoutError(f"{path} line {number}: not an ncnn layer line ({' '.join(fields)[:80]})") from None
    if len(ins) != n_in or len(outs) != n_out or n_in < 0:
      raise LayoutError(f"{path} line {number}: layer {fields[1]} lists fewer blobs than it declares")
    if n_out < 1:
      raise LayoutError(f"{path} line {number}: layer {fields[1]} ({fields[0]}) produces no blob; every layer of a "
                        "network has an output")
    layers.append(Layer(fields[0], fields[1], ins, outs, params, number))
  if len(layers) != layer_count:
    raise LayoutError(f"{path}: declares {layer_count} layers but holds {len(layers)} (a truncated file?)")
  return layers


class _Bin:
  """Reads ``.bin`` in order, counting bytes: each piece is read when the .param asks for it, after checking that
  the file holds it, so a .bin far larger than its .param describes is never read whole."""

  def __init__(self, path: str):
    self.path = path
    self._file = open(path, "rb")
    self.size = os.fstat(self._file.fileno()).st_size
    self.offset = 0

  def close(self) -> None:
    self._file.close()

  def take(self, n: int, layer: Layer, what: str) -> bytes:
    if self.offset + n > self.size:
      raise LayoutError(f"{self.path} ends at byte {self.size:,} inside the {what} of layer {layer.name} "
                        f"({os.path.basename(self.path)} is truncated or belongs to another .param)")
    out = self._file.read(n)
    if len(out) != n:
      raise LayoutError(f"{self.path}: could read only {self.offset + len(out):,} of its {self.size:,} bytes")
    self.offset += n
    return out

  def tagged(self, count: int, layer: Layer) -> np.ndarray:
    """A ``type 0`` load: a tag, then fp16 or fp32 values."""
    tag = int.from_bytes(self.take(4, layer, "weight tag"), "little")
    if tag == _FP16:
      raw = self.take(count * 2 + (-count * 2) % 4, layer, "fp16 weights")
      return np.frombuffer(raw[:count * 2], "<f2").astype(np.float32)
    if tag in (0, _FP32_SCALED):
      return self.raw(count, layer, "fp32 weights")
    kind = "int8-quantised" if tag == _INT8 else "table-quantised (8-bit indices into 256 values)"
    raise LayoutError(f"{self.path}: layer {layer.name} holds {kind} weights (tag 0x{tag:08X}); sr_jax imports "
                      "fp32 and fp16 ncnn models only (quantisation changes the network's outputs)")

  def raw(self, count: int, layer: Layer, what: str) -> np.ndarray:
    return np.frombuffer(self.take(count * 4, layer, what), "<f4").astype(np.float32)


def _count(layer: Layer, key: int, what: str, path: str, default=None) -> int:
  """Parameter ``key`` of ``layer``, which must be a positive whole number (``what`` names it in the message)."""
  value = layer.get(key, default)
  if type(value) is not int or value <= 0:
    raise LayoutError(f"{path} line {layer.line}: {layer.type} {layer.name} has {key}={value} ({what}); it must be "
                      "a positive whole number")
  return value


def _conv_weights(layer: Layer, blob: _Bin) -> tuple[np.ndarray, np.ndarray | None]:
  out = _count(layer, 0, "num_output", blob.path)
  k = _count(layer, 1, "kernel_w", blob.path)
  size = _count(layer, 6, "weight_data_size", blob.path)
  kh = _count(layer, 11, "kernel_h", blob.path, default=k)
  if layer.get(5) not in (0, 1):
    raise LayoutError(f"{blob.path} line {layer.line}: Convolution {layer.name} has 5={layer.get(5)} (bias_term); "
                      "it must be 0 or 1")
  checks = {"kernel_h == kernel_w": kh == k, "dilation 1": layer.get(2, 1) == 1 and layer.get(12, 1) == 1,
            "stride 1": layer.get(3, 1) == 1 and layer.get(13, 1) == 1,
            "'same' zero padding": all(layer.get(key, layer.get(4)) == k // 2 for key in (4, 14, 15, 16))
            and layer.get(18, 0.0) == 0.0, "float weights": layer.get(8) == 0, "static weights": layer.get(19) == 0}
  for what, ok in checks.items():
    if not ok:
      raise LayoutError(f"{blob.path}: Convolution {layer.name} (line {layer.line}) is not {what}; sr_jax's "
                        "networks are built of 3x3 stride-1 'same' convolutions")
  if size % (out * k * k):
    raise LayoutError(f"{blob.path}: Convolution {layer.name} has {size} weights, not a multiple of "
                      f"{out} outputs x {k}x{k}")
  kernel = blob.tagged(size, layer).reshape(out, size // (out * k * k), k, k)
  bias = blob.raw(out, layer, "bias") if layer.get(5) else None
  return kernel, bias


def read_weights(param_path: str, bin_path: str) -> tuple[list[Layer], dict[str, tuple]]:
  """The layers, and {layer name: (kernel OIHW, bias) for Convolution | (slopes,) for PReLU}."""
  layers = parse_param(param_path)
  try:
    blob = _Bin(bin_path)
  except OSError as e:
    raise LayoutError(f"cannot read {bin_path}: {e.strerror or e}") from e
  weights = {}
  try:
    for layer in layers:
      if layer.type == "Convolution":
        weights[layer.name] = _conv_weights(layer, blob)
      elif layer.type == "PReLU":
        weights[layer.name] = (blob.raw(_count(layer, 0, "num_slope", param_path), layer, "PReLU slopes"),)
      elif layer.type not in _NO_WEIGHTS:
        raise LayoutError(f"{param_path} line {layer.line}: layer type {layer.type} ({layer.name}) is not one "
                          "sr_jax can import (known: Convolution, PReLU, " + ", ".join(_NO_WEIGHTS) + ")")
  finally:
    blob.close()
  if blob.offset != blob.size:
    raise LayoutError(f"{bin_path} holds {blob.size - blob.offset:,} bytes after the weights "
                      f"{os.path.basename(param_path)} describes ({blob.offset:,} of {blob.size:,} bytes): "
                      "it belongs to another .param")
  return layers, weights


def _signature(layer: Layer) -> tuple:
  """What identifies a layer's role: its type and the parameters that change what it computes."""
  p = layer.get
  if layer.type == "Convolution":
    return ("Convolution", p(9), tuple(round(v, 6) for v in p(10, [])))
  if layer.type == "Concat":
    return ("Concat", len(layer.inputs))
  if layer.type == "Eltwise":
    return ("Eltwise", p(0), tuple(round(v, 6) for v in p(1, [])))
  if layer.type == "BinaryOp":
    return ("BinaryOp", p(0), p(1))
  if layer.type == "Interp":
    return ("Interp", p(0), round(float(p(1, 1.0)), 6), round(float(p(2, 1.0)), 6))
  if layer.type == "PixelShuffle":
    return ("PixelShuffle", p(0), p(1))
  return (layer.type,)


_CONV, _LRELU_CONV = ("Convolution", 0, ()), ("Convolution", 2, (0.2,))
_ADD_02 = ("Eltwise", 1, (0.2, 1.0))


def _rrdbnet_signature(num_blocks: int) -> list[tuple]:
  rdb = [_LRELU_CONV]
  for n in (2, 3, 4):
    rdb += [("Concat", n), _LRELU_CONV]
  rdb += [("Concat", 5), _CONV, _ADD_02]
  up = [("Interp", 1, 2.0, 2.0), _LRELU_CONV]
  return [_CONV] + (rdb * 3 + [_ADD_02]) * num_blocks + [_CONV, ("BinaryOp", 0, 0)] + up + up + [_LRELU_CONV, _CONV]


def _srvgg_signature(num_conv: int, scale: int) -> list[tuple]:
  return ([_CONV, ("PReLU",)] * (num_conv + 1) + [_CONV, ("PixelShuffle", scale, 0),
                                                  ("Interp", 1, float(scale), float(scale)), ("BinaryOp", 0, 0)])


def _compare(path: str, layers: list[Layer], expected: list[tuple], what: str) -> None:
  for layer, want in zip(layers, expected):
    if _signature(layer) != want:
      raise LayoutError(f"{path} line {layer.line}: layer {layer.name} is {_signature(layer)} where {what} has "
                        f"{want}; the graph is not one sr_jax can import (RRDBNet or SRVGGNetCompact)")
  if len(layers) != len(expected):
    extra = layers[len(expected)] if len(layers) > len(expected) else None
    where = f"line {extra.line}: layer {extra.name} ({extra.type}) follows" if extra else "the graph ends before"
    raise LayoutError(f"{path} {where} the end of {what}; the graph is not one sr_jax can import")


def _srvgg_tail_resize(path: str, layers: list[Layer], scale: int) -> None:
  """The x2/x3 conversions of animevideov3 are its x4 network followed by an ncnn bicubic resize."""
  last = layers[-1]
  if last.type == "Interp" and last.get(0) == 3 and len(layers) >= 2 and layers[-2].type == "BinaryOp":
    factor = float(last.get(1, 1.0))
    raise LayoutError(
        f"{path} line {last.line}: the x{scale} network's output is resized by {factor:g} with ncnn's bicubic "
        f"Interp ({last.name}), giving x{scale * factor:g}; sr_jax imports the network itself, not that resize. "
        f"Import the x{scale} file that shares this .bin (e.g. REALESRGAN_ANIMAVIDEOV3_UP4X.param) and resize "
        "its output, or use a model trained for the scale")


def read(param_path: str) -> dict[str, np.ndarray]:
  """``MODEL.param`` (and the ``MODEL.bin`` beside it) as a BasicSR state dict: RRDBNet names (conv_first,
  body.i.rdbk.convj, ...) or SRVGGNetCompact's (body.N, convolutions and PReLUs in order)."""
  bin_path = os.path.splitext(param_path)[0] + ".bin"
  if not os.path.isfile(bin_path):
    raise LayoutError(f"{param_path}: its weights {bin_path} are missing (an ncnn model is a .param + .bin pair)")
  layers, weights = read_weights(param_path, bin_path)
  body = [layer for layer in layers if layer.type not in ("Input", "Split")]
  convs = [layer for layer in body if layer.type == "Convolution"]
  if not convs:
    raise LayoutError(f"{param_path}: no Convolution layers; not an RRDBNet or SRVGGNetCompact")
  if any(layer.type == "PReLU" for layer in body):
    return _srvgg_state_dict(param_path, layers, body, weights)
  num_blocks = (len(convs) - 6) // 15
  _compare(param_path, body, _rrdbnet_signature(num_blocks), f"an RRDBNet x4 of {num_blocks} blocks")
  names = (["conv_first"] + [f"body.{i}.rdb{k}.conv{j}" for i in range(num_blocks) for k in (1, 2, 3)
                             for j in range(1, 6)] + ["conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last"])
  return _named(names, convs, weights)


def _srvgg_state_dict(path: str, layers: list[Layer], body: list[Layer], weights: dict) -> dict[str, np.ndarray]:
  num_conv = sum(layer.type == "PReLU" for layer in body) - 1
  shuffles = [layer for layer in body if layer.type == "PixelShuffle"]
  scale = _count(shuffles[0], 0, "upscale_factor", path) if shuffles else 0
  _srvgg_tail_resize(path, body, scale)
  _compare(path, body, _srvgg_signature(num_conv, scale), f"an SRVGGNetCompact x{scale} of {num_conv} convolutions")
  interp = body[-2]
  if interp.inputs[0] not in _aliases(layers, layers[0].outputs[0]):
    raise LayoutError(f"{path} line {interp.line}: {interp.name} up-samples {interp.inputs[0]}, not the input: "
                      "not SRVGGNetCompact's residual over the nearest-upsampled input")
  learned = [layer for layer in body if layer.type in ("Convolution", "PReLU")]
  return _named([f"body.{i}" for i in range(len(learned))], learned, weights)


def _aliases(layers: list[Layer], blob: str) -> set[str]:
  """``blob`` and its copies through Split layers."""
  names = {blob}
  for layer in layers:
    if layer.type == "Split" and layer.inputs[0] in names:
      names.update(layer.outputs)
  return names


def _named(names: list[str], layers: list[Layer], weights: dict) -> dict[str, np.ndarray]:
  out = {}
  for name, layer in zip(names, layers, strict=True):
    w = weights[layer.name]
    out[f"{name}.weight"] = w[0]
    if len(w) > 1 and w[1] is not None:
      out[f"{name}.bias"] = w[1]
  return out
