"""The pretrained registry: fetch over file:// and a loopback HTTP server, checksum refusal, cache, --file."""

import functools
import http.server
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from sr_jax.core import download
from sr_jax.core.errors import DataError
from sr_jax.hub import model_zoo
from sr_jax.workdir import run_dir

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden"))
import rrdbnet_reference as ref  # noqa: E402  (a small BasicSR-layout RRDBNet state dict)


@pytest.fixture
def checkpoint(tmp_path, monkeypatch):
  """A BasicSR-layout x4 RRDBNet file and a registry entry pointing at it; the cache in tmp_path."""
  src = tmp_path / "srv"
  src.mkdir()
  path = src / "tiny_rrdbnet_x4.npz"
  np.savez(path, **{f"params_ema.{k}": v for k, v in ref.state_dict("x4").items()})
  monkeypatch.setenv("SR_JAX_CACHE", str(tmp_path / "cache"))
  entry = model_zoo.Entry(path.as_uri(), "rrdbnet, 2 blocks", 4, "nothing", "tests")
  monkeypatch.setitem(model_zoo.ZOO, "tiny", entry)
  return path


def test_fetch_over_file_url_imports_and_caches(checkpoint, tmp_path):
  fields, digest = model_zoo.fetch("tiny", str(tmp_path / "a"), progress=False)
  assert fields["name"] == "rrdbnet" and fields["scale"] == 4 and digest == download.sha256(str(checkpoint))
  assert run_dir.load_run(str(tmp_path / "a"), "latest").step == 0
  os.remove(checkpoint)  # Cached: a second fetch needs no source.
  model_zoo.fetch("tiny", str(tmp_path / "b"), progress=False)
  with pytest.raises(FileExistsError, match="already holds checkpoints"):
    model_zoo.fetch("tiny", str(tmp_path / "b"), progress=False)


def test_checksum_mismatch_is_refused_and_nothing_is_kept(checkpoint, tmp_path, monkeypatch):
  monkeypatch.setitem(model_zoo.ZOO, "tiny", model_zoo.Entry(checkpoint.as_uri(), "", 4, "", "", sha256="deadbeef"))
  with pytest.raises(DataError, match="checksum mismatch .*expected sha256 deadbeef"):
    model_zoo.fetch("tiny", str(tmp_path / "a"), progress=False)
  assert not os.listdir(tmp_path / "cache") and not (tmp_path / "a" / "checkpoints").exists()
  with pytest.raises(DataError, match="does not match the published deadbeef"):
    model_zoo.fetch("tiny", str(tmp_path / "a"), file=str(checkpoint))
  good = download.sha256(str(checkpoint))[:8]  # A torch.hub-style prefix verifies too.
  monkeypatch.setitem(model_zoo.ZOO, "tiny", model_zoo.Entry(checkpoint.as_uri(), "", 4, "", "", sha256=good))
  model_zoo.fetch("tiny", str(tmp_path / "a"), file=str(checkpoint))
  with pytest.raises(DataError, match="unknown pretrained model 'nope'; available: .*realesrgan_x4plus"):
    model_zoo.entry("nope")


def test_fetch_over_a_loopback_http_server(checkpoint, tmp_path):
  handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(checkpoint.parent))
  server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
  threading.Thread(target=server.serve_forever, daemon=True).start()
  try:
    url = f"http://127.0.0.1:{server.server_port}/{checkpoint.name}"
    fields, _ = model_zoo.fetch("tiny", str(tmp_path / "a"), url=url, progress=False)
    assert fields["num_blocks"] == 2
    with pytest.raises(DataError, match="download failed"):
      download.download(url + ".missing", str(tmp_path / "x.npz"))
  finally:
    server.shutdown()


def test_cli_lists_the_registry():
  out = subprocess.run([sys.executable, "-m", "sr_jax.cli.pretrained", "list"], capture_output=True, text=True)
  assert out.returncode == 0 and "realesrgan_x4plus" in out.stdout and "DF2K + OST" in out.stdout
  here, _, elsewhere = out.stdout.partition("Need a download first")  # The usable ones first, under a header.
  assert "Here, usable offline now (--pretrained=NAME): " in here and "realesrnet_x4plus" in elsewhere
  assert out.stdout.count("\n") < 2 * 30 + 6  # Two lines a model, a header per group.
  out = subprocess.run([sys.executable, "-m", "sr_jax.cli.pretrained", "fetch"], capture_output=True, text=True)
  assert out.returncode != 0 and "usage: python -m sr_jax.cli.pretrained list | fetch NAME" in out.stderr


def test_every_registry_entry_names_a_registered_architecture_and_scale():
  from sr_jax.models import registry
  for name, e in model_zoo.ZOO.items():
    arch = e.architecture.split(",")[0].split()[0]
    assert arch in registry.ARCHITECTURES and e.scale in registry.ARCHITECTURES[arch].scales, name
    if name.startswith("mmagic"):  # The published hash prefix is the one in the file name.
      assert e.file.endswith(f"-{e.sha256}.pth") and len(e.sha256) == 8
