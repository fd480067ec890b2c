"""Image quality scores of the report (``docs/maths.md`` (1.5), ``docs/report.md``).

Per image, on images in [0, 1]: :func:`psnr` (the papers' figure, averaged
over images in the report) and :func:`ssim` (deepinv's). Over a set,
:func:`pooled_psnr` is -10 log10 of the mean squared error, i.e. of the
upper-level loss (1.4): it ranks thetas exactly as the loss does.
"""

import math

import torch


@torch.no_grad()
def psnr(x, clean):
    """Per-image PSNR in dB, ``-10 log10(MSE + 1e-8)`` (B,).

    The formula of ``deepinv.metric.PSNR(max_pixel=1.0)`` bit for bit (the
    MSE over C, H, W) without importing deepinv; ``x`` and ``clean`` are
    tensors or arrays (B, C, H, W).
    """
    x, clean = torch.as_tensor(x), torch.as_tensor(clean)
    mse = (x - clean).abs().pow(2).mean(dim=tuple(range(1, x.ndim)))
    return -10.0 * torch.log10(mse / 1.0**2 + 1e-8)


@torch.no_grad()
def ssim(x, clean):
    """Per-image SSIM (B,) of ``deepinv.metric.SSIM(max_pixel=1.0)``."""
    from deepinv.loss.metric import SSIM

    x, clean = torch.as_tensor(x), torch.as_tensor(clean)
    return SSIM(max_pixel=1.0, min_pixel=0.0)(x, clean)


def pooled_psnr(mse):
    """-10 log10 of the mean of the per-image MSEs ``mse`` (a float)."""
    return -10.0 * math.log10(float(torch.as_tensor(mse).double().mean()))
