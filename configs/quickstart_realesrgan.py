r"""CPU-sized real-world model: the quickstart RDN at x4 trained on Real-ESRGAN-degraded patches (EMA 0.999).

  sr-train --config=quickstart_realesrgan --workdir=runs/quickstart_realesrgan
  sr-train --config=quickstart_x4 --workdir=runs/quickstart_x4          # its bicubic-trained twin
  python -m experiments.realworld --bicubic=runs/quickstart_x4 --realesrgan=runs/quickstart_realesrgan

Same model, data, steps and EMA as quickstart_x4.py; only data.degradation differs. Validation: the held-out
chelsea and coffee, degraded once per image by the same model.
"""

from sr_jax.configs import quickstart_x4


def get_config():
  config = quickstart_x4.get_config()
  config.data.degradation = "realesrgan"
  return config
