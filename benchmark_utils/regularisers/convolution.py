"""Filter banks of the convolutional regularisers: boundaries, adjoints, norms.

``docs/maths.md`` section 2; the boundaries and the proofs of the bounds:
``docs/regularisers.md``, "Convolutions and their norms". Correlations go
through :mod:`benchmark_utils.conv_backend`.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from .. import conv_backend

#: "valid": responses where the whole kernel lies inside the image (padding
#: 0); "same": one response per pixel of the zero-extended image (padding
#: S // 2); "mirror": one response per pixel of the half-sample symmetric
#: extension of the image
BOUNDARIES = ("valid", "same", "mirror")


def correlate(x, kernel, padding=None):
    """``conv2d(x, kernel, padding=p)``, p = S // 2 by default (backend:
    :func:`benchmark_utils.conv_backend.correlate`)."""
    return conv_backend.correlate(x, kernel, padding)


def correlate_t(u, kernel, padding=None):
    """Exact adjoint of :func:`correlate` (= ``conv_transpose2d``, same padding)."""
    return conv_backend.correlate_t(u, kernel, padding)


@functools.lru_cache(maxsize=64)
def _mirror_index(h, w, r, device):
    """Flat source pixel of each of the (h + 2r) (w + 2r) extended pixels."""

    def axis(n):
        i = torch.arange(-r, n + r) % (2 * n)
        return torch.where(i < n, i, 2 * n - 1 - i)

    return (axis(h)[:, None] * w + axis(w)[None, :]).flatten().to(device)


def mirror_pad(x, r):
    """Half-sample symmetric extension (numpy's ``"symmetric"``, periodic
    past the image) of ``x`` (..., H, W) by ``r``: (..., H + 2r, W + 2r)."""
    h, w = x.shape[-2:]
    flat = x.flatten(-2)
    index = _mirror_index(h, w, int(r), x.device)
    out = torch.gather(flat, -1, index.expand(*flat.shape[:-1], -1))
    return out.view(*x.shape[:-2], h + 2 * r, w + 2 * r)


def mirror_fold(z, r):
    """Exact adjoint of :func:`mirror_pad`: each extended pixel is added to
    the pixel it copies, (..., H + 2r, W + 2r) -> (..., H, W)."""
    h, w = z.shape[-2] - 2 * r, z.shape[-1] - 2 * r
    flat = z.flatten(-2)
    index = _mirror_index(h, w, int(r), z.device)
    out = flat.new_zeros(*flat.shape[:-1], h * w)
    out.scatter_add_(-1, index.expand(flat.shape), flat)
    return out.view(*z.shape[:-2], h, w)


def check_boundary(boundary, allowed):
    """Raise a one-line ``ValueError`` unless ``boundary`` is in ``allowed``."""
    if boundary not in allowed:
        raise ValueError(f"boundary must be one of {allowed}, got {boundary!r}")
    return boundary


def filter_bank(x, kernel, boundary):
    """Responses (B, O, H', W') of the bank ``kernel`` (O, I, S, S) to ``x``
    (B, I, H, W): H' = H - S + 1 for ``"valid"``, H otherwise."""
    r = kernel.shape[-1] // 2
    if boundary == "mirror":
        return correlate(mirror_pad(x, r), kernel, 0)
    return correlate(x, kernel, 0 if boundary == "valid" else r)


def filter_bank_t(u, kernel, boundary):
    """Exact adjoint of :func:`filter_bank` (responses to images)."""
    r = kernel.shape[-1] // 2
    if boundary == "mirror":
        return mirror_fold(correlate_t(u, kernel, 0), r)
    return correlate_t(u, kernel, 0 if boundary == "valid" else r)


def bank_sizes(h, w, size, boundary):
    """Response side and the side of the adjoint's correlation, as
    ``((h_out, w_out), (h_adj, w_adj))``, for a bank of side ``size``."""
    r = size // 2
    if boundary == "valid":
        return (h - 2 * r, w - 2 * r), (h, w)
    if boundary == "mirror":
        return (h, w), (h + 2 * r, w + 2 * r)
    return (h, w), (h, w)


def random_filters(shape, gen, zero_mean):
    """Gaussian filters ``shape`` = (O, I, s, s) drawn from ``gen`` (float64),
    zero-mean over (I, s, s) if ``zero_mean``, each of unit l2 norm."""
    k = torch.randn(shape, generator=gen, dtype=torch.float64)
    if zero_mean:
        k = k - k.mean(dim=(1, 2, 3), keepdim=True)
    return k / k.flatten(1).norm(dim=1).view(-1, 1, 1, 1)


def dct_filters(n_filters, n_channels, size, gen):
    """The ``n_filters`` lowest-frequency zero-mean DCT-II filters (O, C, s, s).

    Orthonormal, ordered by spatial frequency, luminance before the two
    opponent colour patterns; Gaussian (:func:`random_filters`) beyond the
    C s^2 - 1 there are (``docs/regularisers.md``, "Fields of Experts").
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


def difference_filters(n_filters, n_channels, size, gen):
    """Finite differences, then :func:`dct_filters` (O, C, s, s).

    Forward differences along rows, columns and both diagonals, then second
    differences along rows and columns (on the luminance in colour; none for
    s = 1); all zero-mean, of unit l2 norm (``docs/regularisers.md``).
    """
    c = size // 2
    taps = [
        {(c, c): -1.0, (c, c + 1): 1.0},
        {(c, c): -1.0, (c + 1, c): 1.0},
        {(c, c): -1.0, (c + 1, c + 1): 1.0},
        {(c, c + 1): -1.0, (c + 1, c): 1.0},
        {(c, c - 1): 1.0, (c, c): -2.0, (c, c + 1): 1.0},
        {(c - 1, c): 1.0, (c, c): -2.0, (c + 1, c): 1.0},
    ][: n_filters if size >= 3 else 0]
    out = torch.zeros(len(taps), n_channels, size, size, dtype=torch.float64)
    for k, filt in enumerate(taps):
        for (i, j), value in filt.items():
            out[k, :, i, j] = value
    out /= out.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    extra = n_filters - len(taps)
    if extra > 0:
        out = torch.cat((out, dct_filters(extra, n_channels, size, gen)))
    return out


def zero_mean_(filters):
    """Project every filter (O, I, s, s) onto zero mean over (I, s, s), in place."""
    filters -= filters.mean(dim=(1, 2, 3), keepdim=True)


def compose_kernels(kernels):
    """One correlation kernel (C_L, C_0, S, S), S = 1 + sum_l (s_l - 1), equal
    on the infinite grid to correlating with ``kernels`` (C_l, C_(l-1), s_l,
    s_l) first to last; differentiable."""
    out = kernels[0]
    for k in kernels[1:]:
        # the correlation of a correlation is a correlation with the *full
        # convolution* of the kernels: conv2d against flipped k, padding s - 1
        s = k.shape[-1]
        out = F.conv2d(out.transpose(0, 1), k.flip(-1, -2), padding=s - 1)
        out = out.transpose(0, 1)
    return out


def gram_norm_bound(kernel, weights=None, grid=None):
    """Rigorous bound B >= ||diag(sqrt(w)) K||^2, K the correlation on Z^2.

    B >= sup_omega lambda_max(sum_o w_o K_o(omega)^H K_o(omega)); it bounds
    the "valid" and "same" banks on every image (``docs/regularisers.md``,
    "Gram bound"). ``kernel`` (O, I, S, S); ``weights`` (O,) >= 0, default
    ones; ``grid`` the side of the frequency grid (default: a power of two
    >= 16 (S - 1), at least 128 in grey and 64 in colour). Returns a float;
    ``ValueError`` if ``grid`` is too coarse for S.
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


def parity_parts(kernel):
    """Parts (4, O, I, S, S) of ``kernel`` even or odd about its centre along
    rows and columns (ee, eo, oe, oo); they sum to ``kernel``."""
    rows = (kernel + kernel.flip(-2)) / 2, (kernel - kernel.flip(-2)) / 2
    return torch.stack(
        [part for a in rows for part in ((a + a.flip(-1)) / 2, (a - a.flip(-1)) / 2)]
    )


def mirror_norm_bound(kernel, weights=None, iters=20, grid=32):
    """Rigorous bound on ||diag(sqrt(w)) K_m||^2 for the ``"mirror"`` bank.

    Valid for every image size: :func:`gram_norm_bound` of the
    :func:`parity_parts` with weights w / t, the shares t (summing to 1 over
    a filter's parts) chosen by ``iters`` Frank-Wolfe steps on a ``grid``
    side grid; at most 4 times the Gram bound of ``kernel`` (O, I, S, S), S
    odd, and equal to it for one-parity filters. ``weights`` (O,) >= 0,
    default ones. Proof: ``docs/regularisers.md``, "Mirror bound".
    """
    kernel = kernel.detach().to(torch.float64)
    if weights is None:
        weights = kernel.new_ones(kernel.shape[0])
    weights = weights.detach().to(torch.float64).clamp_min(0)
    if not bool(torch.isfinite(kernel).all() and torch.isfinite(weights).all()):
        return math.inf  # a wrecked theta: the divergence rules read inf
    parts = parity_parts(kernel)  # (4, O, I, S, S)
    spec = torch.fft.rfft2(parts, s=(grid, grid)).abs().pow(2).sum(dim=2)
    symbol = spec.flatten(2) * weights.view(1, -1, 1)  # (4, O, frequencies)
    live = symbol.amax(dim=-1) > 0
    shares = _mirror_shares(symbol, live, iters)
    w = torch.where(live, weights / shares.clamp_min(1e-300), 0.0).flatten()
    keep = w > 0
    multiplicity = 4.0 * gram_norm_bound(kernel, weights)
    if not bool(keep.any()):
        return multiplicity
    return min(multiplicity, gram_norm_bound(parts.flatten(0, 1)[keep], w[keep]))


def _mirror_shares(symbol, live, iters):
    """Shares t (4, O) that make max_omega sum_parts symbol / t small:
    Frank-Wolfe on the dual (``docs/regularisers.md``); the best t seen."""
    mu = symbol.new_full((symbol.shape[-1],), 1.0 / symbol.shape[-1])
    best, best_shares = math.inf, None
    for it in range(iters):
        shares = torch.where(live, (symbol @ mu).clamp_min(1e-300).sqrt(), 0.0)
        shares = shares / shares.sum(dim=0, keepdim=True).clamp_min(1e-300)
        inverse = torch.where(live, 1.0 / shares.clamp_min(1e-300), 0.0)
        total = (inverse.unsqueeze(-1) * symbol).sum(dim=(0, 1))
        peak = float(total.max())
        if peak < best:
            best, best_shares = peak, shares
        step = 2.0 / (it + 3)
        mu = mu * (1.0 - step)
        mu[int(total.argmax())] += step
    return best_shares


def cached_bound(reg, theta, compute):
    """``compute(theta)``, memoised on the value of theta (the last call)."""
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
