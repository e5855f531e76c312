"""Frozen networks that the metrics and the losses share: VGG features (``vgg``) and its ImageNet weights from
several file layouts (``vgg_weights``), the LPIPS network with its backbones and v0.1 heads (``lpips``), and DISTS's
L2-pooled VGG16 with its learned alpha/beta (``dists``). ``metrics/`` and ``losses/`` import down into this
package; nothing here imports them.
"""
