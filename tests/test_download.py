"""core/download.py and the model zoo's downloads against a hostile server: truncated files, HTML error pages,
a dripping server, killed downloads, the destination never touched on failure."""

import http.server
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from sr_jax.core import download, errors
from sr_jax.data import benchmark_data
from sr_jax.hub import model_zoo

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden"))
import rrdbnet_reference as ref  # noqa: E402


def _dead_pid() -> int:
  proc = subprocess.Popen(["true"])
  proc.wait()
  return proc.pid


class _Hostile(http.server.BaseHTTPRequestHandler):
  """/ok/F serves F; /trunc/F announces F's length and closes half-way; /html/F answers 200 with an error page;
  /drip/F sends a byte every 0.2 s."""
  root = ""

  def log_message(self, *args):
    pass

  def do_GET(self):
    mode, name = self.path.strip("/").split("/", 1)
    data = open(os.path.join(self.root, name), "rb").read()
    if mode == "html":
      data = b"<!DOCTYPE html><html><body>404 Not Found (the bucket moved)</body></html>"
    self.send_response(200)
    self.send_header("Content-Length", str(len(data)))
    self.end_headers()
    if mode == "trunc":
      self.wfile.write(data[:len(data) // 2])
      self.wfile.flush()
      self.close_connection = True
      return
    if mode == "drip":
      for i in range(min(len(data), 50)):
        self.wfile.write(data[i:i + 1])
        self.wfile.flush()
        time.sleep(0.2)
      return
    self.wfile.write(data)


@pytest.fixture
def hostile_server(tmp_path):
  root = tmp_path / "srv"
  root.mkdir()
  handler = type("H", (_Hostile,), {"root": str(root)})
  server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
  server.daemon_threads = True
  threading.Thread(target=server.serve_forever, daemon=True).start()
  yield root, f"http://127.0.0.1:{server.server_port}"
  server.shutdown()
  server.server_close()


@pytest.fixture
def zoo_entry(tmp_path, monkeypatch, hostile_server):
  """A registry entry without a published hash (as ISR's and Real-ESRGAN's are) for an .npz on the server."""
  root, base = hostile_server
  np.savez(root / "tiny_x4.npz", **{f"params_ema.{k}": v for k, v in ref.state_dict("x4").items()})
  monkeypatch.setenv("SR_JAX_CACHE", str(tmp_path / "cache"))
  monkeypatch.setitem(model_zoo.ZOO, "tiny", model_zoo.Entry(f"{base}/ok/tiny_x4.npz", "rrdbnet", 4, "", ""))
  return base


def test_truncated_download_and_html_error_page_are_never_cached(zoo_entry, tmp_path):
  cache = tmp_path / "cache"
  with pytest.raises(errors.DataError, match=r"closed the connection after [\d,]+ of [\d,]+ bytes .*not kept"):
    model_zoo.fetch("tiny", str(tmp_path / "a"), url=f"{zoo_entry}/trunc/tiny_x4.npz", progress=False)
  assert not os.listdir(cache) and not (tmp_path / "a").exists()
  with pytest.raises(errors.DataError, match="not a .npz file: it holds an HTML/XML page"):
    model_zoo.fetch("tiny", str(tmp_path / "a"), url=f"{zoo_entry}/html/tiny_x4.npz", progress=False)
  assert not os.listdir(cache)
  fields, _ = model_zoo.fetch("tiny", str(tmp_path / "a"), progress=False)  # The real file is then fetched.
  assert fields["scale"] == 4 and os.listdir(cache) == ["tiny_x4.npz"]


def test_a_damaged_cached_file_names_itself_and_how_to_clear_it(zoo_entry, tmp_path):
  cached = tmp_path / "cache" / "tiny_x4.npz"
  model_zoo.fetch("tiny", str(tmp_path / "a"), progress=False)
  cached.write_bytes(cached.read_bytes()[:1000])  # Damaged after the fact (a disk error, a hand copy).
  with pytest.raises(errors.DataError, match=f"the cached file {cached} cannot be used .*delete it \\(rm {cached}\\)"):
    model_zoo.fetch("tiny", str(tmp_path / "b"), progress=False)


def test_a_dripping_server_meets_the_total_deadline(zoo_entry, tmp_path):
  start = time.monotonic()
  with pytest.raises(errors.DataError, match="not complete after 1 s"):
    model_zoo.fetch("tiny", str(tmp_path / "a"), url=f"{zoo_entry}/drip/tiny_x4.npz", timeout=5, deadline=1,
                    progress=False)
  assert time.monotonic() - start < 5 and not os.listdir(tmp_path / "cache")


def test_partial_files_of_killed_downloads_are_cleaned_on_the_next_run(zoo_entry, tmp_path, data_dir):
  pid = _dead_pid()
  cache = tmp_path / "cache"
  cache.mkdir()
  for name in (f"tiny_x4.npz.part{pid}", f".tiny_x4.npz.tmp{pid}-0123abcd"):
    (cache / name).write_bytes(b"half")
  (cache / f"mine.part{pid}").write_bytes(b"a user's file")  # Not a download's name: kept.
  model_zoo.fetch("tiny", str(tmp_path / "a"), progress=False)
  assert sorted(os.listdir(cache)) == [f"mine.part{pid}", "tiny_x4.npz"]
  # fetch_data: a benchmark folder where a killed fetch left a part file, which evaluate would count as an image.
  sets = tmp_path / "sets" / "Set5"
  sets.mkdir(parents=True)
  (sets / f"baby.png.part{pid}").write_bytes(b"half")
  mirror = "file://" + os.path.abspath(data_dir)
  benchmark_data.fetch(["Set5"], str(tmp_path / "sets"), mirror=mirror, progress=lambda _: None)
  assert sorted(os.listdir(sets)) == sorted(f for f, _, _ in benchmark_data.manifest()["Set5"])


def test_download_never_touches_the_destination_on_failure(tmp_path, hostile_server):
  root, base = hostile_server
  (root / "f.bin").write_bytes(b"x" * 1000)
  dst = tmp_path / "f.bin"
  dst.write_bytes(b"good")
  with pytest.raises(errors.DataError, match="truncated"):
    download.download(f"{base}/trunc/f.bin", str(dst))
  assert dst.read_bytes() == b"good" and sorted(os.listdir(tmp_path)) == ["f.bin", "srv"]
