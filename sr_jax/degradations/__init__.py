"""Real-world degradations (Real-ESRGAN, Wang et al., ICCVW 2021): blur kernels, noise, JPEG, resizing."""
