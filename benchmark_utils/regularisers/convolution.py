"""Convolutions shared by the convolutional regularisers, and their norms.

``docs/maths.md`` section 2. Every filter bank acts as a zero-padded
cross-correlation ``conv2d(x, kernel, padding=p)`` (FoE: p = 0, the "valid"
cliques; CRR and ICNN: p = S // 2, "same"); its adjoint is the correlation
with flipped, transposed kernels and padding S - 1 - p, which equals
``conv_transpose2d`` with padding p and is exact (dot-product tests in
``tests/test_regularisers.py`` and ``tests/test_conv_backend.py``). Both go
through :mod:`benchmark_utils.conv_backend`, which picks the fastest
measured backend for the shape and device. Operator-norm bounds for the Lipschitz
constants are derived in ``docs/regularisers.md``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .. import conv_backend


def correlate(x, kernel, padding=None):
    """Zero-padded cross-correlation with ``kernel`` (O, I, S, S).

    ``padding`` defaults to S // 2 ("same" for odd S); 0 is the "valid"
    correlation. The backend (NNPACK, oneDNN/cuDNN) is picked by
    :func:`benchmark_utils.conv_backend.correlate` (``docs/speed.md``).
    """
    return conv_backend.correlate(x, kernel, padding)


def correlate_t(u, kernel, padding=None):
    """Exact adjoint of :func:`correlate` (= ``conv_transpose2d``, same padding).

    Computed by :func:`benchmark_utils.conv_backend.correlate_t`; every
    backend passes the dot-product test (``tests/test_conv_backend.py``).
    """
    return conv_backend.correlate_t(u, kernel, padding)


def random_filters(shape, gen, zero_mean):
    """Gaussian filters (O, I, s, s), each output filter of unit l2 norm.

    Parameters
    ----------
    shape : tuple of int
        (O, I, s, s).
    gen : torch.Generator
        Source of the draw (float64, on the CPU).
    zero_mean : bool
        Subtract each filter's mean over (I, s, s) before normalising.
    """
    k = torch.randn(shape, generator=gen, dtype=torch.float64)
    if zero_mean:
        k = k - k.mean(dim=(1, 2, 3), keepdim=True)
    return k / k.flatten(1).norm(dim=1).view(-1, 1, 1, 1)


def dct_filters(n_filters, n_channels, size, gen):
    """The ``n_filters`` lowest-frequency zero-mean DCT-II filters (O, C, s, s).

    Products of a 2-D DCT-II basis function of side ``size`` and, in colour,
    of a 3-point channel pattern (luminance (1, 1, 1) / sqrt 3, then the
    opponent patterns (1, 0, -1) / sqrt 2 and (1, -2, 1) / sqrt 6), ordered by
    spatial frequency i + j, luminance first; the constant one is left out,
    so every filter is zero-mean over (C, s, s) and of unit l2 norm, and the
    filters are orthonormal. The classical derivative-like start of Fields of
    Experts (Roth and Black 2009, section 4); filters beyond the C s^2 - 1
    available are Gaussian (:func:`random_filters`).
    """
    k = torch.arange(size, dtype=torch.float64)
    basis = torch.cos(math.pi * (k[None, :] + 0.5) * k[:, None] / size)
    basis = basis / basis.norm(dim=1, keepdim=True)  # (frequency, position)
    if n_channels == 1:
        patterns = torch.ones(1, 1, dtype=torch.float64)
    else:
        patterns = torch.tensor(
            [[1.0, 1.0, 1.0], [1.0, 0.0, -1.0], [1.0, -2.0, 1.0]], dtype=torch.float64
        )
        patterns = patterns / patterns.norm(dim=1, keepdim=True)
    order = sorted(
        (i + j, c, max(i, j), i, j)
        for c in range(patterns.shape[0])
        for i in range(size)
        for j in range(size)
        if (i, j, c) != (0, 0, 0)
    )
    out = [
        patterns[c].view(-1, 1, 1) * (basis[i][:, None] * basis[j][None, :])
        for _, c, _, i, j in order[:n_filters]
    ]
    extra = n_filters - len(out)
    if extra > 0:
        out.extend(random_filters((extra, n_channels, size, size), gen, True))
    return torch.stack(out)


def zero_mean_(filters):
    """Make every filter (O, I, s, s) zero-mean over (I, s, s), in place.

    The orthogonal projection onto zero-mean filters: with it the filter
    bank ignores constant images away from the border.
    """
    filters -= filters.mean(dim=(1, 2, 3), keepdim=True)


def compose_kernels(kernels):
    """Single correlation kernel equal to a chain of correlations.

    Parameters
    ----------
    kernels : list of torch.Tensor
        Layer kernels ``(C_l, C_(l-1), s_l, s_l)``, applied first to last
        (each as ``F.conv2d``, a cross-correlation).

    Returns
    -------
    torch.Tensor
        ``(C_L, C_0, S, S)`` with S = 1 + sum_l (s_l - 1): on the infinite
        grid, ``conv2d(conv2d(x, k1), k2) = conv2d(x, compose([k1, k2]))``.
        Differentiable (autograd and ``torch.func`` transforms).
    """
    out = kernels[0]
    for k in kernels[1:]:
        # the correlation of a correlation is a correlation with the *full
        # convolution* of the kernels: conv2d against flipped k, padding s - 1
        s = k.shape[-1]
        out = F.conv2d(out.transpose(0, 1), k.flip(-1, -2), padding=s - 1)
        out = out.transpose(0, 1)
    return out


def gram_norm_bound(kernel, weights=None, grid=None):
    """Rigorous upper bound on ||diag(sqrt(w)) K||^2 for a correlation K.

    K is the multi-channel correlation with ``kernel`` (O, I, S, S) on
    l2(Z^2); any zero-padded restriction of it to a finite image (as
    ``conv2d(..., padding=S // 2)``) has a norm at most as large.

    Parameters
    ----------
    kernel : torch.Tensor
        (O, I, S, S), S odd or even.
    weights : torch.Tensor, optional
        Non-negative (O,) output-channel weights w (default all ones).
    grid : int, optional
        Side N of the frequency grid (default: the power of two >= 16 (S - 1),
        at least 128 for one input channel and 64 for more; the correction
        factor is then at most 1.09, and 1.05 for the 13 x 13 CRR kernel).

    Returns
    -------
    float
        B >= sup_omega lambda_max(M(omega)) with M = sum_o w_o
        conj(K_o(omega))^T K_o(omega) (I x I), K_o the DTFT of row o.

    Notes
    -----
    The Gram kernel G = K^T diag(w) K has support (2S - 1)^2, so M is a
    trigonometric polynomial of degree n = S - 1 in each frequency, and M is
    Hermitian positive semidefinite. Let omega* maximise lambda_max(M) with
    top eigenvector v* and p(omega) = v*^H M(omega) v*: then
    0 <= p <= p(omega*) everywhere, so grad p(omega*) = 0. Along the segment
    from omega* to the nearest grid point (each coordinate at most pi / N
    away), p is a bounded function of exponential type tau <= 2 n pi / N, so
    Bernstein's inequality gives |p''| <= tau^2 p(omega*) and Taylor's
    theorem p(omega*) <= p(grid point) + tau^2 / 2 p(omega*). Hence
    sup <= max_grid / (1 - 2 (n pi / N)^2).
    """
    kernel = kernel.detach().to(torch.float64)
    o, i, s, _ = kernel.shape
    if weights is None:
        weights = torch.ones(o, dtype=torch.float64, device=kernel.device)
    weights = weights.detach().to(torch.float64).clamp_min(0)
    n = s - 1
    if grid is None:
        grid = max(128 if i == 1 else 64, 1 << math.ceil(math.log2(max(16 * n, 1))))
    factor = 1.0 - 2.0 * (n * math.pi / grid) ** 2
    if factor <= 0:
        raise ValueError(f"grid={grid} is too coarse for kernels of size {s}")
    # Gram kernel G[a, b](d) = sum_o w_o <K[o, a](. + d), K[o, b](.)>,
    # d in [-(S-1), S-1], by FFTs on a grid of side >= 2S - 1 (no aliasing)
    small = 1 << math.ceil(math.log2(2 * s - 1))
    spec = torch.fft.rfft2(kernel, s=(small, small))  # (O, I, m, m/2+1)
    spec_w = spec * weights.view(-1, 1, 1, 1)
    gram_hat = torch.einsum("oaxy,obxy->abxy", spec_w, spec.conj())
    gram = torch.fft.irfft2(gram_hat, s=(small, small))  # circular = linear here
    # the same trigonometric polynomial sampled on the fine N x N grid
    # (rows/columns d and small - d hold the lags d and -d)
    padded = kernel.new_zeros(i, i, grid, grid)
    idx = torch.cat((torch.arange(0, s), torch.arange(grid - s + 1, grid)))
    src = torch.cat((torch.arange(0, s), torch.arange(small - s + 1, small)))
    padded[:, :, idx[:, None], idx[None, :]] = gram[:, :, src[:, None], src[None, :]]
    # real kernel: M(-w) = conj(M(w)) has the same spectrum, half plane suffices
    symbol = torch.fft.rfft2(padded)  # (I, I, N, N/2+1), Hermitian in (I, I)
    if i == 1:
        top = symbol.real.amax()
    else:
        mats = symbol.permute(2, 3, 0, 1)
        mats = 0.5 * (mats + mats.conj().transpose(-1, -2))
        top = torch.linalg.eigvalsh(mats).amax()
    return float(top.clamp_min(0)) / factor


def cached_bound(reg, theta, compute):
    """``compute(theta)``, memoised on the value of theta (last call only).

    Solvers ask for the Lipschitz bound several times at the same theta (the
    divergence check, then the lower-level solve); the bound costs a few
    FFTs, so it is kept until theta changes.
    """
    theta = theta.detach()
    cache = getattr(reg, "_bound_cache", None)
    if (
        cache is not None
        and cache[0].shape == theta.shape
        and cache[0].device == theta.device
        and cache[0].dtype == theta.dtype
        and torch.equal(cache[0], theta)
    ):
        return cache[1]
    value = compute(theta)
    reg._bound_cache = (theta.clone(), value)
    return value
