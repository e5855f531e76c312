r"""Imports published weights into an sr_jax workdir; the layout is recognised from the tensor names.

  python -m sr_jax.cli.import_weights --weights=RDN_BIX2.pt --workdir=runs/rdn_x2_authors
  python -m sr_jax.cli.import_weights --weights=RealESRGAN_x4plus.pth --workdir=runs/realesrgan_x4plus
  python -m sr_jax.cli.import_weights --weights=rdn-C6-D20-G64-G064-x2_PSNR_epoch086.hdf5 --workdir=runs/isr_large
  python -m sr_jax.cli.import_weights --weights=REALESRGAN_X4PLUS_UP4X.param --workdir=runs/x4plus_ncnn  # + .bin
  python -m sr_jax.cli.evaluate --workdir=runs/rdn_x2_authors --datasets=Set5,Set14,B100

  python -m sr_jax.cli.import_weights --weights=edsr_x4-4f62e9ef.pt --workdir=runs/edsr_x4  # res_scale 0.1 assumed

Layouts: the RDN authors' EDSR-PyTorch code, EDSR and RCAN of EDSR-PyTorch (EDSR's and RCAN's releases) and of
BasicSR, BasicSR / Real-ESRGAN / ESRGAN RRDBNet, Real-ESRGAN's SRVGGNetCompact, mmagic's RDN, idealo ISR's
RDN / RRDN (sr_jax/hub/importers/). Files: ``.pth``/``.pt`` (needs torch), ``.safetensors``, ``.npz``, Keras
``.h5``/``.hdf5``, or an ncnn ``.param`` with its ``.bin`` beside it
(an RRDBNet or SRVGGNetCompact graph, fp32/fp16 weights).
"""

from absl import app, flags

from sr_jax import cli
from sr_jax.hub import importers

flags.DEFINE_string("weights", None, "Weights file (.pth/.pt, .safetensors, .npz, .h5/.hdf5, or an ncnn .param "
                    "with its .bin): an EDSR-PyTorch or mmagic RDN, an EDSR-PyTorch or BasicSR EDSR/RCAN, a "
                    "BasicSR/Real-ESRGAN/ESRGAN RRDBNet or SRVGGNetCompact, an idealo ISR RDN/RRDN.")
flags.DEFINE_string("workdir", None, "New workdir to create.")
flags.DEFINE_float("rgb_range", None, "Pixel range the weights were trained on (default: the layout's; RDN "
                   "authors and EDSR/RCAN 255, BasicSR RRDBNet, mmagic, ISR 1).", lower_bound=1e-6)
flags.DEFINE_float("res_scale", None, "EDSR/RCAN: the residual scaling the weights were trained with (not stored "
                   "in them; default: 0.1 for a 256-feature EDSR, else 1).", lower_bound=1e-6)
flags.DEFINE_bool("verbose", False, "Show the traceback of user errors (missing or unreadable files) too.")
flags.mark_flags_as_required(["weights", "workdir"])
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  arch = importers.import_to_workdir(FLAGS.weights, FLAGS.workdir, FLAGS.rgb_range, {"res_scale": FLAGS.res_scale})
  print(f"Imported {arch['name'].upper()} {arch} into {FLAGS.workdir} (checkpoint step 0)")


def run() -> None:
  """Console script ``sr-import-weights``."""
  cli.run(main)


if __name__ == "__main__":
  run()
