r"""Keeps a sweep's finished members as small files in the repository, so that its report can be rebuilt and the
sweep can go on from another machine or session (the runs/ folder is not kept between them).

  python -m experiments.archive_runs --runs=runs/arch_study_x4 --to=experiments/results/arch_study_x4/runs

For every member whose launch.json says done: config.json, launch.json, validation.json, eval/summary.json and
eval/table.md (what experiments.report and experiments.arch_report read), never checkpoints; for an
``sr_jax.cli.interpolate`` grid folder under the root (it holds interpolation.md): that file and the same files of each
alpha_X blend, which the report draws as a curve. Each member is
written into a temporary folder beside --to and renamed into place, so an interrupted copy leaves the previous
archive of that member whole. To go on elsewhere: ``mkdir -p runs/X && cp -r TO/* runs/X/``, then the
launcher skips those members; a member whose checkpoint a later member reads (a fine-tune's start) trains again.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

from absl import app, flags

from sr_jax import cli
from sr_jax.inference import interpolation

flags.DEFINE_string("runs", None, "The sweep's root folder (the launcher's --root).")
flags.DEFINE_string("to", None, "The archive folder (created if missing).")
FLAGS = flags.FLAGS

FILES = ("config.json", "launch.json", "validation.json", os.path.join("eval", "summary.json"),
         os.path.join("eval", "table.md"))


def _kept_files(src: str) -> list[str]:
  """What to keep of one folder under the root (relative paths): a finished member's FILES, an interpolation grid's
  interpolation.md and each blend's FILES; nothing of an unfinished or failed member."""
  if os.path.isfile(os.path.join(src, interpolation.GRID_TABLE)):
    blends = [b for b in sorted(os.listdir(src)) if interpolation.blend_alpha(b) is not None]
    return [interpolation.GRID_TABLE] + [os.path.join(b, rel) for b in blends for rel in FILES]
  try:
    with open(os.path.join(src, "launch.json")) as f:
      return list(FILES) if json.load(f).get("status") == "done" else []
  except (OSError, ValueError):
    return []


def _not_archived(target: str) -> list[str]:
  """Files under ``target`` that an archive of a member or grid cannot hold (an earlier archive is replaced; a
  folder holding anything else is the user's)."""
  allowed = set(FILES) | {interpolation.GRID_TABLE}
  out = []
  for folder, _, names in os.walk(target):
    for n in names:
      rel = os.path.relpath(os.path.join(folder, n), target)
      first, _, rest = rel.partition(os.sep)
      if rel not in allowed and not (interpolation.blend_alpha(first) is not None and rest in FILES):
        out.append(rel)
  return sorted(out)


def archive(root: str, dest: str) -> list[str]:
  """Copies the finished members' small files from ``root`` to ``dest``; returns the members archived."""
  if not os.path.isdir(root):
    raise FileNotFoundError(f"{root}: no such sweep root")
  os.makedirs(dest, exist_ok=True)
  done = []
  for name in sorted(os.listdir(root)):
    src = os.path.join(root, name)
    kept = _kept_files(src)
    if not kept:
      continue
    tmp = tempfile.mkdtemp(prefix=f".{name}.", dir=dest)
    try:
      for rel in kept:
        if os.path.isfile(os.path.join(src, rel)):
          os.makedirs(os.path.dirname(os.path.join(tmp, rel)), exist_ok=True)
          shutil.copyfile(os.path.join(src, rel), os.path.join(tmp, rel))
      target = os.path.join(dest, name)
      foreign = _not_archived(target)
      if foreign:
        raise FileExistsError(f"{target} holds {', '.join(foreign[:3])}, which archive_runs does not write: not "
                              "replaced (archive into another --to)")
      if os.path.isdir(target) and not os.path.islink(target):
        old = tempfile.mkdtemp(prefix=f".{name}.old.", dir=dest)
        os.rename(target, os.path.join(old, name))
        os.rename(tmp, target)
        shutil.rmtree(old)
      else:
        if os.path.lexists(target):
          raise FileExistsError(f"{target} exists and is not a folder: not replaced")
        os.rename(tmp, target)
    finally:
      if os.path.isdir(tmp):
        shutil.rmtree(tmp)
    done.append(name)
  return done


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}: give --runs and --to")
  names = archive(FLAGS.runs, FLAGS.to)
  print(f"{len(names)} finished member(s) archived into {FLAGS.to}: {', '.join(names) or '-'}")


if __name__ == "__main__":
  flags.mark_flags_as_required(["runs", "to"])  # Here, not at import: tests import archive() beside other tools.
  cli.run(main)
