"""The work axis: every oracle priced in lower-level gradient-equivalents.

w(oracle) = flops(oracle) / flops(ll_grad) (``docs/maths.md`` (3.2) and
section 3.3: the counting rules for correlations, FFTs, pixelwise passes and
reverse-mode autograd). Each regulariser declares its counts
(``work_flops``), each forward operator its A^T A (:func:`ata_flops`);
``tools/work_weights.py`` compares the weights with measured CPU time.
"""

from __future__ import annotations

import math

#: oracles that carry a work weight (the per-image jvp is priced separately)
WORK_ORACLES = ("ll_grad", "hvp", "hess_build", "jvp", "jvp_per_image", "ul_grad")


def correlation_flops(out_ch, in_ch, size, h_out, w_out):
    """Multiply-adds x 2 of one correlation (or its adjoint) on one image."""
    return 2.0 * out_ch * in_ch * size * size * h_out * w_out


def fft_flops(channels, h, w):
    """One real 2-D FFT (or inverse) of ``channels`` planes of h x w."""
    n = h * w
    return 2.5 * channels * n * math.log2(max(n, 2))


def ata_flops(forward, image_shape):
    """FLOPs of A^T A x on one image for the forward operator ``forward``.

    Denoising: none (A = I is folded into the pixelwise passes); inpainting:
    one mask product; deblurring: an rfft2, a complex product with the
    spectrum and an irfft2 (``ForwardOperator.AtA``).
    """
    c, h, w = image_shape
    if getattr(forward, "is_identity", False):
        return 0.0
    if getattr(forward, "_ata_spectrum", None) is not None:
        return 2 * fft_flops(c, h, w) + 6.0 * c * h * (w // 2 + 1)
    return float(c * h * w)


def work_weights(regulariser, forward, image_shape):
    """Gradient-equivalents of every oracle (:data:`WORK_ORACLES`).

    Parameters
    ----------
    regulariser : Regulariser
        Declares ``work_flops(image_shape)``.
    forward : ForwardOperator
    image_shape : tuple of int
        (C, H, W).

    Returns
    -------
    dict of str to float
        ``ll_grad`` is 1 by definition.
    """
    c, h, w = image_shape
    pixels = float(c * h * w)
    reg = regulariser.work_flops(image_shape)
    ata = ata_flops(forward, image_shape)
    grad = reg["grad"] + ata + 2 * pixels
    return {
        "ll_grad": 1.0,
        "hvp": (reg["hvp"] + ata + 2 * pixels) / grad,
        "hess_build": reg["build"] / grad,
        "jvp": reg["jvp"] / grad,
        "jvp_per_image": reg["jvp_per_image"] / grad,
        "ul_grad": 3 * pixels / grad,
    }
