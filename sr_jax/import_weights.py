r"""Imports RDN weights in the layout of the authors' PyTorch code into an sr_jax workdir.

  python -m sr_jax.import_weights --weights=RDN_BIX2.pt --workdir=runs/rdn_x2_authors
  python -m sr_jax.evaluate --workdir=runs/rdn_x2_authors --datasets=Set5,Set14,B100

Files: ``.pth``/``.pt`` (needs torch), ``.safetensors`` or ``.npz`` (no torch needed); see sr_jax/importers.py.
"""

from absl import app, flags

from sr_jax import cli, importers

flags.DEFINE_string("weights", None, "The authors' RDN weights (.pth/.pt, .safetensors or .npz).")
flags.DEFINE_string("workdir", None, "New workdir to create.")
flags.DEFINE_float("rgb_range", 255.0, "Pixel range the weights were trained on (authors: 255).")
flags.DEFINE_bool("verbose", False, "Show the traceback of user errors (missing or unreadable files) too.")
flags.mark_flags_as_required(["weights", "workdir"])
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  arch = importers.import_to_workdir(FLAGS.weights, FLAGS.workdir, FLAGS.rgb_range)
  print(f"Imported RDN {arch} into {FLAGS.workdir} (checkpoint step 0)")


def run() -> None:
  """Console script ``sr-import-weights``."""
  cli.run(main)


if __name__ == "__main__":
  run()
