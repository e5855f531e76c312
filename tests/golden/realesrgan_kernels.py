"""Writes realesrgan_kernels.npz: BasicSR's own blur-kernel functions on fixed parameters (the golden that
tests/test_degradations.py compares sr_jax.data.degradations.kernels against).

  pip download --no-deps --no-binary :all: basicsr==1.4.2 -d /tmp/bsr   # the sdist; unpack it if needed
  python tests/golden/realesrgan_kernels.py /tmp/bsr/basicsr/data/degradations.py

Only the module's NumPy/SciPy functions are executed; its cv2/torch/torchvision imports are stubbed (no kernel
function uses them).
"""

import math
import os
import sys
import types

import numpy as np
import scipy.special  # noqa: F401  (imported before the torch stub, which would confuse scipy)
import scipy.stats  # noqa: F401

CASES = {  # name: (function, args)
    "iso_21_s1.3": ("bivariate_Gaussian", (21, 1.3, 1.3, 0.0), {"isotropic": True}),
    "aniso_21_s2.5_0.7_t0.6": ("bivariate_Gaussian", (21, 2.5, 0.7, 0.6), {"isotropic": False}),
    "aniso_7_s0.4_2.9_t-2.2": ("bivariate_Gaussian", (7, 0.4, 2.9, -2.2), {"isotropic": False}),
    "gen_iso_15_s1.8_b0.6": ("bivariate_generalized_Gaussian", (15, 1.8, 1.8, 0.0, 0.6), {"isotropic": True}),
    "gen_aniso_21_s3_1_t1.1_b3.5": ("bivariate_generalized_Gaussian", (21, 3.0, 1.0, 1.1, 3.5),
                                    {"isotropic": False}),
    "plateau_iso_11_s0.9_b1.7": ("bivariate_plateau", (11, 0.9, 0.9, 0.0, 1.7), {"isotropic": True}),
    "plateau_aniso_21_s2_0.5_t-0.4_b1.2": ("bivariate_plateau", (21, 2.0, 0.5, -0.4, 1.2), {"isotropic": False}),
    "sinc_21_c0.9": ("circular_lowpass_kernel", (0.9, 21), {}),
    "sinc_9_c2.5_pad21": ("circular_lowpass_kernel", (2.5, 9), {"pad_to": 21}),
    "sinc_13_pi": ("circular_lowpass_kernel", (math.pi, 13), {}),
}


def main(path: str) -> None:
  for name in ("cv2", "torch", "torchvision", "torchvision.transforms", "torchvision.transforms.functional_tensor"):
    sys.modules.setdefault(name, types.ModuleType(name))
  sys.modules["torchvision.transforms.functional_tensor"].rgb_to_grayscale = None
  namespace: dict = {}
  with open(path) as f:
    exec(compile(f.read(), path, "exec"), namespace)
  out = {name: np.asarray(namespace[fn](*args, **kw), np.float64) for name, (fn, args, kw) in CASES.items()}
  np.savez_compressed(os.path.join(os.path.dirname(os.path.abspath(__file__)), "realesrgan_kernels.npz"), **out)
  print(f"wrote {len(out)} kernels")


if __name__ == "__main__":
  main(sys.argv[1])
