"""experiments/archive_runs.py: archives of our own are replaced, a user's folder never."""

import pytest


@pytest.fixture(scope="module")
def run(finished_run):
  return finished_run


def test_archive_runs_replaces_its_own_archives_but_not_a_folder_of_the_users(tmp_path, run):
  import shutil
  from experiments import archive_runs
  root = tmp_path / "root"
  shutil.copytree(run, root / "m")
  (root / "m" / "launch.json").write_text('{"status": "done"}')
  dest = tmp_path / "archive"
  assert archive_runs.archive(str(root), str(dest)) == ["m"]
  assert archive_runs.archive(str(root), str(dest)) == ["m"]  # Its own earlier archive: replaced.
  (dest / "m" / "notes.txt").write_text("the user's")
  with pytest.raises(FileExistsError, match=r"archive/m holds notes.txt, which archive_runs does not write"):
    archive_runs.archive(str(root), str(dest))
  assert (dest / "m" / "notes.txt").read_text() == "the user's"
