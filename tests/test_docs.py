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


def _tables(text: str) -> list[list[list[str]]]:
  """The markdown tables of ``text`` outside code fences: each a list of rows, each a list of cell texts."""
  tables, current, fenced = [], [], False
  for line in text.splitlines() + [""]:
    if line.startswith("```"):
      fenced = not fenced
    if not fenced and line.startswith("|"):
      current.append([c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))])  # Not at "\|".
    elif current:
      tables.append(current)
      current = []
  return tables


@pytest.mark.parametrize("doc", DOCS)
def test_docs_markdown_renders(doc):
  """Fences open and close, every table row has its header's cells, inline code spans close within their
  paragraph (an odd backtick swallows the rest of the paragraph into code)."""
  text = open(os.path.join(REPO, doc)).read()
  fences = [i for i, line in enumerate(text.splitlines(), 1) if line.lstrip().startswith("```")]
  assert len(fences) % 2 == 0, f"{doc}: an unclosed code fence (fence lines {fences})"
  bad = []
  for table in _tables(text):
    if len(table) > 1 and not set("".join(table[1])) <= set("-: "):
      bad.append(f"no separator row under {table[0]}")
    bad += [f"row {row[:2]} has {len(row)} cells, the header {len(table[0])}" for row in table[2:]
            if len(row) != len(table[0])]
  prose = re.sub(r"```.*?```", "", text, flags=re.S)
  for para in re.split(r"\n\s*\n", prose):
    if para.count("`") % 2:
      bad.append(f"odd backticks in the paragraph starting {para.strip()[:60]!r}")
  assert not bad, f"{doc}: " + "; ".join(bad)


_METRIC = {"PSNR": "PSNR ↑", "SSIM": "SSIM ↑", "LPIPS": "LPIPS ↓", "DISTS": "DISTS ↓", "NIQE": "NIQE ↓"}


def test_figures_quoted_from_the_loss_study_equal_its_report():
  """docs/experiments.md quotes the x4 loss study's table; the report (written by experiments/report.py from the
  runs) is the one source: every quoted number equals the report's, rounded as quoted."""
  report = open(os.path.join(REPO, "experiments", "results", "loss_study_x4", "report.md")).read()
  source = next(t for t in _tables(report) if t[0][:2] == ["recipe", "seeds"])
  values = {row[0]: dict(zip(source[0], row)) for row in source[2:]}
  checked, bad = 0, []
  for table in _tables(open(os.path.join(REPO, "docs", "experiments.md")).read()):
    if table[0][:2] != ["recipe", "seeds"] or "Set5" not in table[0][2]:
      continue
    for row in table[2:]:
      if row[0] not in values:
        continue
      for head, cell in zip(table[0][2:], row[2:]):
        dataset, metrics_ = head.split(" ", 1)
        names = re.split(r"\s*[/·]\s*", metrics_)
        numbers = [n for n in re.split(r"\s*[/·]\s*", cell.replace("**", ""))]
        for name, quoted in zip(names, numbers):
          quoted = quoted.split("±")[0].strip()
          source_cell = values[row[0]][f"{dataset} x4 {_METRIC[name]}"].split("±")[0].strip()
          want = float(source_cell)
          decimals = len(quoted.split(".")[1]) if "." in quoted else 0
          places = len(source_cell.split(".")[1]) if "." in source_cell else 0
          checked += 1  # As precise as the report: equal; less: either rounding of its figure (0.3125: 0.312, 0.313).
          if (quoted != source_cell if decimals >= places else
              abs(float(quoted) - want) > 0.5 * 10**-decimals + 0.5 * 10**-places + 1e-9):
            bad.append(f"{row[0]} {dataset} {name}: quoted {quoted}, the report says {want}")
  assert checked >= 100 and not bad, bad
