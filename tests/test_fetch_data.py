"""Fetching the benchmark sets: verified against the manifest, through a loopback HTTP server (never the internet)."""

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading

import pytest

from programs import REPO
from sr_jax.core import errors
from sr_jax.core.errors import DataError
from sr_jax.data import benchmark_data


@pytest.fixture
def mirror(tmp_path, data_dir):
  """A loopback server laid out as <set>/<file>, holding Set5 copied from the data folder."""
  root = tmp_path / "mirror"
  shutil.copytree(os.path.join(data_dir, "Set5"), root / "Set5")
  handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
  http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
  server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  yield root, f"http://127.0.0.1:{server.server_address[1]}"
  server.shutdown()
  server.server_close()


def test_manifest_matches_the_reference_data(data_dir):
  known = benchmark_data.manifest()
  assert {k: len(v) for k, v in known.items()} == {"Set5": 5, "Set14": 14, "B100": 100, "T91": 91, "BSD200": 200}
  assert set(known) == set(benchmark_data.SOURCES)
  for file, size, digest in known["Set5"]:
    assert benchmark_data.sha256(os.path.join(data_dir, "Set5", file)) == digest


def test_fetch_verifies_each_file_and_skips_what_is_present(mirror, tmp_path):
  root, url = mirror
  counts = benchmark_data.fetch(["Set5"], str(tmp_path / "data"), mirror=url, progress=lambda s: None)
  assert counts == {"Set5": 5} and sorted(os.listdir(tmp_path / "data" / "Set5")) == sorted(os.listdir(root / "Set5"))
  assert benchmark_data.fetch(["Set5"], str(tmp_path / "data"), mirror=url, progress=lambda s: None) == {"Set5": 0}


def test_corrupt_or_missing_downloads_are_refused_and_not_kept(mirror, tmp_path):
  root, url = mirror
  (root / "Set5" / "bird.png").write_bytes(b"not the bird")
  with pytest.raises(errors.DataError, match=r"bird.png: checksum mismatch"):
    benchmark_data.fetch(["Set5"], str(tmp_path / "a"), mirror=url, progress=lambda s: None)
  assert not any(f.startswith("bird") for f in os.listdir(tmp_path / "a" / "Set5"))
  os.remove(root / "Set5" / "bird.png")
  with pytest.raises(errors.DataError, match=r"bird.png: download failed"):
    benchmark_data.fetch(["Set5"], str(tmp_path / "b"), mirror=url, progress=lambda s: None)
  with pytest.raises(errors.DataError, match="unknown set"):
    benchmark_data.fetch(["Set6"], str(tmp_path / "c"), mirror=url)


def test_fetch_cli(mirror, tmp_path):
  _, url = mirror
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  out = subprocess.run([sys.executable, "-m", "sr_jax.cli.fetch_data", "Set5", f"--to={tmp_path / 'd'}",
                        f"--mirror={url}"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0 and "Set5: 5 files verified" in out.stdout, out.stderr[-2000:]
  out = subprocess.run([sys.executable, "-m", "sr_jax.cli.fetch_data", "Urban1000", f"--to={tmp_path / 'd'}"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert out.returncode == 1 and "unknown set(s) Urban1000" in out.stderr and "Traceback" not in out.stderr


def test_fetch_data_never_replaces_a_file_that_is_not_the_published_one(tmp_path):
  from sr_jax.data import benchmark_data
  folder = tmp_path / "data" / "Set5"
  folder.mkdir(parents=True)
  name = benchmark_data.manifest()["Set5"][0][0]
  (folder / name).write_bytes(b"my own picture")
  with pytest.raises(DataError, match=rf"{name} exists and is not the published file .* it is not replaced"):
    benchmark_data.fetch(["Set5"], str(tmp_path / "data"), mirror="http://127.0.0.1:9/none", timeout=1,
                         progress=lambda s: None)
  assert (folder / name).read_bytes() == b"my own picture"
