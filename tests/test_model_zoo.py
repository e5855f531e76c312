"""hub/model_zoo.py: a fetch checks the model before writing anything; damaged cache entries are imported again."""

import os

import jax.numpy as jnp
import numpy as np
import pytest

from programs import published_files
from sr_jax.core.errors import DataError
from sr_jax.hub import model_zoo
from sr_jax.workdir import run_dir


COMPACT = "realesr_animevideov3"


def _leaves(r):
  import jax
  return [np.asarray(x) for x in jax.tree.leaves(r.params)]


def test_fetching_the_wrong_file_into_an_empty_folder_changes_nothing_and_the_right_one_then_works(tmp_path):
  wrong = published_files(COMPACT)[0]
  empty = tmp_path / "x4plus"
  empty.mkdir()
  with pytest.raises(DataError, match=rf"holds a srvgg x4 model, but realesrgan_x4plus is rrdbnet x4: not the "
                                      rf"published file; nothing was written to {empty}"):
    model_zoo.fetch("realesrgan_x4plus", str(empty), file=wrong, progress=False)
  assert os.listdir(empty) == [] and os.listdir(tmp_path) == ["x4plus"]
  fields, _ = model_zoo.fetch(COMPACT, str(empty), file=wrong, progress=False)
  assert fields["name"] == "srvgg" and run_dir.load_run(str(empty), "latest").config.model.name == "srvgg"


@pytest.mark.parametrize("damage", ["no_checkpoints", "garbage_manifest", "old_entry_without_file_list"])
def test_a_damaged_cache_entry_is_imported_again_and_works(tmp_path, monkeypatch, capsys, damage):
  published_files(COMPACT)
  monkeypatch.setenv("SR_JAX_CACHE", str(tmp_path / "cache"))
  final = model_zoo.ensure(COMPACT, progress=False)
  good = run_dir.load_run(final, "latest")
  if damage == "no_checkpoints":
    import shutil
    shutil.rmtree(os.path.join(final, "checkpoints"))
  elif damage == "garbage_manifest":
    manifests = [os.path.join(r, n) for r, _, ns in os.walk(final) for n in ns if n == "manifest.ocdbt"]
    assert manifests
    for m in manifests:
      with open(m, "wb") as f:
        f.write(b"garbage")
  else:
    os.remove(os.path.join(final, model_zoo.ENTRY_FILE))
  capsys.readouterr()
  assert model_zoo.ensure(COMPACT, progress=False) == final
  out = capsys.readouterr().out
  assert f"The cached {COMPACT} in {final} could not be used" in out and "importing it again" in out, out
  healed = run_dir.load_run(final, "latest")
  for x, y in zip(jnp.asarray(list(map(np.asarray, _leaves(good)))[0]), jnp.asarray(_leaves(healed)[0])):
    np.testing.assert_array_equal(x, y)
  assert model_zoo.ensure(COMPACT, progress=False) == final and "importing" not in capsys.readouterr().out
  assert [n for n in os.listdir(os.path.dirname(final)) if n != COMPACT] == []
