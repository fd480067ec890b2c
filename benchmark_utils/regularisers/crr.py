"""Convex ridge regulariser (CRR) with a multi-layer linear convolution.

``ALGORITHMS.md`` section 2; the model of Goujon, Neumayer, Bohra, Unser, "A
neural-network-based convex regularizer for inverse problems" (IEEE TCI
2023), as used by Salehi et al., arXiv 2511.06774 (with smooth profiles so
that the Hessian exists):

    R_theta(x) = sum_k sum_p psi_k((W x)_{k,p}),
    W = W_L o ... o W_1   (linear convolutions, no nonlinearity in between),
    psi_k(t) = exp(a_k) eps_k log cosh(t / eps_k),   eps_k = exp(b_k).

The default W maps C -> 4 -> 8 -> K channels with s x s filters (the paper's
1 -> 4 -> 8 -> 32 with 5x5 filters when ``n_filters=32``); the first layer is
kept zero-mean by :meth:`ConvexRidge.project`, so W (hence R) ignores
constant images away from the border.

The profile is a smooth Huber function: quadratic t^2 / (2 eps) near 0,
|t| - eps log 2 far from it, with

    psi'(t) = exp(a) tanh(t / eps),
    psi''(t) = exp(a) / eps * (1 - tanh(t / eps)^2)  in (0, exp(a) / eps],

so each psi_k is convex and R is convex in x (a convex function of a linear
map of x).

Composite kernel. Every layer is a cross-correlation on the infinite grid;
their composition is a single cross-correlation with an S x S kernel,
S = L (s - 1) + 1 (13 for three 5x5 layers), obtained by correlating the layer
kernels (:func:`compose_kernels`). ``W`` on an H x W image is defined as the
restriction to the image of that composition applied to the zero-extended
image, i.e. ``conv2d(x, kernel, padding=S // 2)`` -- exactly what the layered
network computes when the input is zero-padded by S // 2 and every layer is a
"valid" convolution. For one input channel the composite kernel is also
cheaper: K S^2 multiply-adds per pixel against sum_l C_l C_(l-1) s^2.
Gradient and Hessian-vector product are analytic (FoE-style):

    grad_x R   = W^T psi'(W x),
    Hess_x R v = W^T (psi''(W x) . (W v)),   curvature psi''(W x) cached.

Lipschitz bound (no power iteration). With c_k = exp(a_k) / eps_k,
0 <= psi'' <= c gives Hess_x R <= W^T diag(c) W <= P K^T diag(c) K P^T where K
is the composite correlation on l2(Z^2); its norm is
sup_w lambda_max(M(w)), M(w) = sum_k c_k conj(K_k(w))^T K_k(w) (C x C), a
trigonometric polynomial of degree n = S - 1 in each frequency. It is
evaluated on an N x N grid and corrected by Bernstein's inequality
(:func:`gram_norm_bound`), which makes it a rigorous bound for every image
size, within a few percent of the true norm.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .base import HessianOperator, Regulariser


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


def _logcosh(u):
    """log cosh(u), stable for large |u|: |u| + log1p(exp(-2|u|)) - log 2."""
    a = u.abs()
    return a + torch.log1p(torch.exp(-2.0 * a)) - math.log(2.0)


class ConvexRidge(Regulariser):
    """Convex ridge regulariser with a multi-layer convolution and smooth profiles.

    Parameters
    ----------
    n_channels : int
        Image channels C (1 or 3).
    n_filters : int
        Output channels K of W (one ridge profile each); 32 in the CRR paper.
    kernel_size : int
        Odd filter side s of every layer.
    hidden : tuple of int
        Channels of the intermediate layers (default (4, 8): C -> 4 -> 8 -> K).
    init_weight : float
        Initial exp(a_k) (> 0).
    init_smoothing : float
        Initial eps_k = exp(b_k) (> 0).
    filter_scale : float
        Layer kernels are ``filter_scale * theta_part``. Rescales the
        hypergradient of the kernels by ``filter_scale`` (and their effective
        step by its square), so that one SGD step size suits kernels, weights
        and smoothings together.

    Notes
    -----
    theta = [layer kernels (first to last, flattened), a (K), b (K)]. The
    first-layer kernels (``unpack(theta)["filters"]``, (h_1, C, s, s)) are
    kept zero-mean over (C, s, s) by :meth:`project`.
    """

    name = "crr"

    def __init__(
        self,
        n_channels=1,
        n_filters=32,
        kernel_size=5,
        hidden=(4, 8),
        init_weight=1e-2,
        init_smoothing=1e-2,
        filter_scale=1.0,
    ):
        super().__init__(n_channels)
        if int(n_filters) < 1:
            raise ValueError(f"n_filters must be >= 1, got {n_filters!r}")
        if int(kernel_size) < 1 or int(kernel_size) % 2 == 0:
            raise ValueError(
                f"kernel_size must be a positive odd integer, got {kernel_size!r}"
            )
        if any(int(h) < 1 for h in hidden):
            raise ValueError(f"hidden channels must be >= 1, got {hidden!r}")
        if not init_weight > 0 or not init_smoothing > 0:
            raise ValueError(
                "init_weight and init_smoothing must be > 0, got "
                f"{init_weight!r} and {init_smoothing!r}"
            )
        if not filter_scale > 0:
            raise ValueError(f"filter_scale must be > 0, got {filter_scale!r}")
        self.n_filters = int(n_filters)
        self.kernel_size = int(kernel_size)
        self.channels = (self.n_channels, *(int(h) for h in hidden), self.n_filters)
        self.init_log_weight = math.log(init_weight)
        self.init_log_smoothing = math.log(init_smoothing)
        self.filter_scale = float(filter_scale)
        s = self.kernel_size
        self._shapes = [
            (c_out, c_in, s, s)
            for c_in, c_out in zip(self.channels[:-1], self.channels[1:], strict=True)
        ]
        self._n_kernel_params = sum(math.prod(sh) for sh in self._shapes)
        self.composite_size = len(self._shapes) * (s - 1) + 1

    @property
    def n_params(self):
        return self._n_kernel_params + 2 * self.n_filters

    # -- parameters -------------------------------------------------------
    def unpack(self, theta):
        """Views ``filters`` (first layer), ``layers`` (list), ``log_weights``,
        ``log_smoothings`` (K,) each; kernels are unscaled theta entries."""
        layers, start = [], 0
        for sh in self._shapes:
            size = math.prod(sh)
            layers.append(theta[start : start + size].view(sh))
            start += size
        k = self.n_filters
        return {
            "filters": layers[0],
            "layers": layers,
            "log_weights": theta[start : start + k],
            "log_smoothings": theta[start + k : start + 2 * k],
        }

    def init_theta(self, seed, dtype=torch.float32, device="cpu"):
        """Random layers (zero-mean first layer), each output filter of unit
        l2 norm, so the composite filters have norms of order 1."""
        gen = torch.Generator().manual_seed(int(seed))
        parts = []
        for idx, sh in enumerate(self._shapes):
            k = torch.randn(sh, generator=gen, dtype=torch.float64)
            if idx == 0:
                k = k - k.mean(dim=(1, 2, 3), keepdim=True)
            k = k / k.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
            parts.append(k.flatten() / self.filter_scale)
        kf = self.n_filters
        parts.append(torch.full((kf,), self.init_log_weight, dtype=torch.float64))
        parts.append(torch.full((kf,), self.init_log_smoothing, dtype=torch.float64))
        return torch.cat(parts).to(device=device, dtype=dtype)

    def project(self, theta):
        """Make every first-layer filter zero-mean (an orthogonal projection)."""
        theta = theta.clone()
        first = self.unpack(theta)["filters"]
        first -= first.mean(dim=(1, 2, 3), keepdim=True)
        return theta

    def composite(self, theta):
        """The composite kernel (K, C, S, S) of W (differentiable in theta)."""
        layers = [self.filter_scale * k for k in self.unpack(theta)["layers"]]
        return compose_kernels(layers)

    # -- maths in x -------------------------------------------------------
    def _parts(self, theta):
        p = self.unpack(theta)
        weights = torch.exp(p["log_weights"]).view(1, -1, 1, 1)
        eps = torch.exp(p["log_smoothings"]).view(1, -1, 1, 1)
        return self.composite(theta), weights, eps

    def _conv(self, x, kernel):
        return F.conv2d(x, kernel, padding=kernel.shape[-1] // 2)

    def _conv_t(self, u, kernel):
        # adjoint of the zero-padded "same" correlation: the same correlation
        # with flipped, transposed kernels (= conv_transpose2d, a test checks)
        adjoint = kernel.flip(-1, -2).transpose(0, 1).contiguous()
        return F.conv2d(u, adjoint, padding=kernel.shape[-1] // 2)

    def value(self, x, theta):
        kernel, weights, eps = self._parts(theta)
        u = self._conv(x, kernel)
        psi = weights * eps * _logcosh(u / eps)
        return psi.flatten(1).sum(dim=1)

    def grad(self, x, theta):
        kernel, weights, eps = self._parts(theta)
        u = self._conv(x, kernel)
        return self._conv_t(weights * torch.tanh(u / eps), kernel)

    def hessian(self, x, theta):
        kernel, weights, eps = self._parts(theta)
        u = self._conv(x, kernel)
        t = torch.tanh(u / eps)
        # psi''(u) = exp(a) / eps (1 - tanh^2), in place
        curvature = t.mul_(t).neg_().add_(1.0).mul_(weights / eps)

        def apply(v, rows=None):
            w = curvature if rows is None else curvature[rows]
            return self._conv_t(self._conv(v, kernel).mul_(w), kernel)

        return HessianOperator(apply)

    def lipschitz(self, theta):
        """sup_w lambda_max(sum_k c_k K_k(w)^H K_k(w)), c_k = exp(a_k) / eps_k.

        Computed by :func:`gram_norm_bound` on the composite kernel: a
        rigorous bound for every image size (see the module notes).
        """
        return cached_bound(self, theta, self._lipschitz)

    def _lipschitz(self, theta):
        p = self.unpack(theta)
        c = torch.exp(p["log_weights"] - p["log_smoothings"])
        return gram_norm_bound(self.composite(theta), c)
