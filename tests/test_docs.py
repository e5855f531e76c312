"""The docs cannot drift from the code: every command in README.md and docs/*.md names a program that exists, and
every flag it passes is one that program defines (read from its own --help), every --config.KEY a config key."""

import concurrent.futures
import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ["README.md"] + [os.path.join("docs", f) for f in sorted(os.listdir(os.path.join(REPO, "docs")))
                        if f.endswith(".md")]
SCRIPTS = {"sr-train": "sr_jax.cli.train", "sr-evaluate": "sr_jax.cli.evaluate", "sr-upscale": "sr_jax.cli.upscale",
           "sr-import-weights": "sr_jax.cli.import_weights", "sr-fetch-data": "sr_jax.cli.fetch_data",
           "sr-pretrained": "sr_jax.cli.pretrained", "sr-export": "sr_jax.cli.export",
           "sr-interpolate": "sr_jax.cli.interpolate", "sr-score": "sr_jax.cli.score"}
ABSL = {"help", "helpfull", "helpshort", "flagfile", "verbosity", "v", "logtostderr", "alsologtostderr"}


def _commands() -> list[tuple[str, str, str]]:
  """(doc, module, command) of every program invocation in a bash block or inline code span."""
  found = []
  for doc in DOCS:
    text = open(os.path.join(REPO, doc)).read()
    spans = re.findall(r"```bash\n(.*?)```", text, flags=re.S) + re.findall(r"`([^`\n]+)`", text)
    for span in spans:
      for line in span.replace("\\\n", " ").splitlines():
        for part in re.split(r"&&|\|\||;|\|", line.split("#")[0]):
          words = part.split()
          while words and ("=" in words[0] and not words[0].startswith("-")):  # VAR=value prefixes.
            words = words[1:]
          if len(words) >= 3 and words[0] in ("python", "python3") and words[1] == "-m":
            module = words[2]
          elif words and words[0] in SCRIPTS:
            module = SCRIPTS[words[0]]
          else:
            continue
          if module.startswith(("sr_jax.", "experiments.")) and "<" not in module:
            found.append((doc, module, " ".join(words)))
  return found


def _flags_of(module: str) -> set[str]:
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
  out = subprocess.run([sys.executable, "-m", module, "--help"], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=300)
  names = set()
  for m in re.finditer(r"^\s+--(\[no\])?([A-Za-z0-9_]+)", out.stdout + out.stderr, flags=re.M):
    names.add(m.group(2))
    if m.group(1):
      names.add("no" + m.group(2))
  assert names, f"python -m {module} --help listed no flags:\n{out.stdout[-1000:]}{out.stderr[-1000:]}"
  return names


def _config_keys() -> set[str]:
  from sr_jax.configs import default

  def walk(node, prefix=""):
    for key, value in node.items():
      yield prefix + key
      if hasattr(value, "items"):
        yield from walk(value, f"{prefix}{key}.")

  return set(walk(default.get_config()))


def test_every_documented_command_uses_flags_its_program_defines():
  commands = _commands()
  assert len(commands) > 30, commands  # The parser found the docs' commands.
  modules = sorted({m for _, m, _ in commands})
  with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
    flags = dict(zip(modules, pool.map(_flags_of, modules)))
  keys = _config_keys()
  bad = []
  for doc, module, command in commands:
    for token in command.split()[1:]:
      token = token.strip("\"'")
      if not token.startswith("--"):
        continue
      name = token[2:].split("=")[0]
      if name.startswith("config."):
        if module == "sr_jax.cli.train" and name[len("config."):] not in keys:
          bad.append(f"{doc}: `{command}`: no config key {name[len('config.'):]}")
      elif name not in flags[module] | ABSL:
        bad.append(f"{doc}: `{command}`: {module} has no flag --{name}")
  assert not bad, "\n".join(bad)


def test_docs_examples_run_from_a_clone():
  """No example points at this workplace's ../shared/data (the README's test command aside, which CI mirrors)."""
  bad = [f"{doc}:{i}" for doc in DOCS if doc != "README.md"
         for i, line in enumerate(open(os.path.join(REPO, doc)), 1) if "../shared/data" in line]
  assert not bad, bad


@pytest.mark.parametrize("doc", DOCS)
def test_docs_links_point_at_files_that_exist(doc):
  text = open(os.path.join(REPO, doc)).read()
  base = os.path.dirname(os.path.join(REPO, doc))
  missing = [t for t in re.findall(r"\]\(([^)#\s]+)", text) if not t.startswith("http")
             and not os.path.exists(os.path.join(base, t))]
  assert not missing, missing
