"""experiments/report.py: the report goes on past a damaged record and says which."""

import pytest

from programs import run_module


@pytest.fixture(scope="module")
def run(finished_run):
  return finished_run


def test_the_report_goes_on_past_a_truncated_record_and_says_which(tmp_path, run):
  import shutil
  root = tmp_path / "root"
  for name in ("a", "b"):
    shutil.copytree(run, root / name)
  text = (root / "b" / "validation.json").read_text()
  (root / "b" / "validation.json").write_text(text[:len(text) // 2])
  (root / "a" / "launch.json").write_text('{"status": "do')
  res = run_module("experiments.report", str(root))
  assert res.returncode == 0, res.stderr[-3000:]
  md = (root / "report" / "report.md").read_text()
  assert "Damaged files:" in md and f"{root / 'b' / 'validation.json'} is unreadable (JSONDecodeError" in md
  assert f"{root / 'a' / 'launch.json'} is unreadable" in md
