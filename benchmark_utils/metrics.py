"""Image quality scores of the report (``docs/maths.md`` (1.5))."""

import torch


@torch.no_grad()
def psnr(x, clean):
    """Per-image PSNR in dB, ``-10 log10(MSE + 1e-8)``, images in [0, 1].

    The formula of ``deepinv.metric.PSNR(max_pixel=1.0)`` bit for bit (the
    MSE over C, H, W), without importing deepinv. ``x`` and ``clean`` are
    tensors or arrays of shape (B, C, H, W); returns a tensor (B,).
    """
    x, clean = torch.as_tensor(x), torch.as_tensor(clean)
    mse = (x - clean).abs().pow(2).mean(dim=tuple(range(1, x.ndim)))
    return -10.0 * torch.log10(mse / 1.0**2 + 1e-8)
