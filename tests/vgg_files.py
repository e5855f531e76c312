"""Random VGG weights and the files other projects keep them in (torchvision's layout), for the weight loaders'
tests and the perceptual loss's."""

import numpy as np

from sr_jax.nets import vgg

RNG = np.random.default_rng(0)
TORCH_IDX = {"vgg16": [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28],
             "vgg19": [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]}


def random_vgg(network):
  """He-scaled random (HWIO kernel, bias) per conv layer: features stay O(1) through 16 layers."""
  return [(RNG.normal(0, np.sqrt(2 / (9 * cin)), (3, 3, cin, cout)).astype(np.float32),
           RNG.normal(0, 0.1, (cout,)).astype(np.float32)) for cin, cout in vgg.layer_shapes(network)]


def write_torch_layout(path, convs, network, prefix=""):
  """``convs`` as torchvision's ``features.N`` tensors in an .npz, .safetensors or torch file at ``path``."""
  tensors = {}
  for idx, (k, b) in zip(TORCH_IDX[network], convs):
    tensors[f"{prefix}features.{idx}.weight"] = np.ascontiguousarray(k.transpose(3, 2, 0, 1))
    tensors[f"{prefix}features.{idx}.bias"] = b
  if path.endswith(".npz"):
    np.savez(path, **tensors)
  elif path.endswith(".safetensors"):
    from safetensors.numpy import save_file
    save_file(tensors, path)
  else:
    import torch
    torch.save({"state_dict": {k: torch.from_numpy(v) for k, v in tensors.items()}}, path)
