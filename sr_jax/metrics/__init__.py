"""Image-quality metrics: PSNR/SSIM as the papers compute them (psnr_ssim), LPIPS, DISTS, NIQE, and the
registry of their names, directions and scoring functions that evaluation, validation and the report share."""

from sr_jax.core.errors import MetricWeightsError
from sr_jax.metrics.psnr_ssim import psnr, psnr_from_mse, scoring_channels, ssim
from sr_jax.metrics.registry import EXTRA, NAMES, RANKABLE, REGISTRY, Metric, MetricFn, extra_scorers, get

__all__ = ["psnr", "psnr_from_mse", "scoring_channels", "ssim", "EXTRA", "NAMES", "RANKABLE", "REGISTRY", "Metric",
           "MetricFn", "MetricWeightsError", "extra_scorers", "get"]
