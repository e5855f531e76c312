"""Real-world degradations (Real-ESRGAN, Wang et al., ICCVW 2021): blur kernels, noise, JPEG, resizing."""

# config.data.degradation: how training (and validation) LR images are made from HR.
DEGRADATIONS = ("bicubic", "realesrgan")
