"""Convex ridge regularisers (CRR): the family FoE belongs to.

``docs/maths.md`` section 2; the model of Goujon, Neumayer, Bohra, Unser, "A
neural-network-based convex regularizer for inverse problems" (IEEE TCI
2023), as used by Salehi et al., arXiv 2511.06774, with smooth profiles so
that the Hessian exists. A linear convolution W (layers with no nonlinearity
in between, C -> ... -> K channels) and a convex profile per output channel:

    R_theta(x) = sum_k sum_p psi_k((W x)_{k,p}),   W = W_L o ... o W_1,
    psi_k(t) = exp(a_k) eps_k log cosh(t / eps_k),   eps_k = exp(b_k),
    psi'(t) = exp(a) tanh(t / eps),   psi''(t) = exp(a) / eps (1 - tanh(t / eps)^2),

    grad_x R   = W^T psi'(W x),
    Hess_x R v = W^T (psi''(W x) . (W v)),   curvature psi''(W x) cached.

The profile is a smooth Huber function (t^2 / (2 eps) near 0, |t| - eps log 2
far from it). Fields of Experts (:mod:`.foe`) is the one-layer member with
the profile exp(a) phi_eps; every profile has 0 <= psi_k'' <= exp(a_k) / eps_k.
The layers act as one composite S x S kernel, S = L (s - 1) + 1
(:func:`~.convolution.compose_kernels`). Layout, composite kernel and
Lipschitz bound: ``docs/regularisers.md``.
"""

from __future__ import annotations

import math

import torch

from ..work import correlation_flops
from .base import HessianOperator, Regulariser, check_filters, check_positive
from .convolution import (
    cached_bound,
    compose_kernels,
    correlate,
    correlate_t,
    gram_norm_bound,
    random_filters,
    zero_mean_,
)


def _logcosh(u):
    """log cosh(u), stable for large |u|: |u| + log1p(exp(-2|u|)) - log 2."""
    a = u.abs()
    return a + torch.log1p(torch.exp(-2.0 * a)) - math.log(2.0)


class ConvexRidge(Regulariser):
    """Convex ridge regulariser: multi-layer convolution, smooth profiles.

    The ridge family's base: its profile is the log-cosh one, and
    :class:`~.foe.FieldsOfExperts` changes it through :meth:`_energy`,
    :meth:`_slope` and :meth:`_curvature` (all on the responses ``u = W x``).

    Parameters
    ----------
    n_channels : int
        Image channels C (1 or 3).
    n_filters : int
        Output channels K of W (one profile each, >= 1); 32 in the CRR paper.
    kernel_size : int
        Odd filter side s of every layer (>= 3 in grayscale).
    hidden : tuple of int
        Channels of the intermediate layers (default (4, 8): C -> 4 -> 8 -> K,
        the paper's 1 -> 4 -> 8 -> 32 with 5x5 filters when ``n_filters=32``;
        ``()``: one layer).
    init_weight, init_smoothing : float
        Initial exp(a_k) and eps_k = exp(b_k) (> 0).
    filter_scale : float
        Layer kernels are ``filter_scale * theta_part`` (> 0): this scales the
        hypergradient of the kernels by ``filter_scale``, so that one step
        size suits kernels and profile parameters.

    Notes
    -----
    theta = [layer kernels (first to last), a (K), b (K)]
    (``docs/regularisers.md``). ``unpack`` gives ``layers`` (list of
    (C_l, C_(l-1), s, s)), ``filters`` (the first layer), ``log_weights`` and
    ``log_smoothings``; kernels are unscaled theta entries. The first layer
    is kept zero-mean over (C, s, s) by :meth:`project`.
    """

    name = "crr"
    stacked = ("layers",)

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
        check_filters(self.n_channels, n_filters, kernel_size)
        if any(int(h) < 1 for h in hidden):
            raise ValueError(f"hidden channels must be >= 1, got {hidden!r}")
        check_positive(
            init_weight=init_weight,
            init_smoothing=init_smoothing,
            filter_scale=filter_scale,
        )
        self.n_filters = int(n_filters)
        self.kernel_size = s = int(kernel_size)
        self.channels = (self.n_channels, *(int(h) for h in hidden), self.n_filters)
        self.init_log_weight = math.log(init_weight)
        self.init_log_smoothing = math.log(init_smoothing)
        self.filter_scale = float(filter_scale)
        pairs = zip(self.channels[:-1], self.channels[1:], strict=True)
        self.layout = [("layers", (c_out, c_in, s, s)) for c_in, c_out in pairs]
        self.composite_size = len(self.layout) * (s - 1) + 1
        self.layout += [
            ("log_weights", (self.n_filters,)),
            ("log_smoothings", (self.n_filters,)),
        ]

    # -- parameters -------------------------------------------------------
    def unpack(self, theta):
        """Views ``layers`` (list), ``filters`` (first layer), ``log_weights``
        and ``log_smoothings`` (K,); kernels are unscaled theta entries."""
        views = super().unpack(theta)
        views["filters"] = views["layers"][0]
        return views

    def initial_views(self, gen):
        """Gaussian layers of unit-norm output filters (the first zero-mean),
        so the composite filters have norms of order 1; constant a and b."""
        parts = [
            random_filters(shape, gen, zero_mean=(idx == 0)) / self.filter_scale
            for idx, (key, shape) in enumerate(self.layout)
            if key == "layers"
        ]
        for value in (self.init_log_weight, self.init_log_smoothing):
            parts.append(torch.full((self.n_filters,), value, dtype=torch.float64))
        return parts

    def project(self, theta):
        """Make every first-layer filter zero-mean (an orthogonal projection)."""
        theta = theta.clone()
        zero_mean_(self.unpack(theta)["filters"])
        return theta

    def composite(self, theta):
        """The composite kernel (K, C, S, S) of W (differentiable in theta)."""
        layers = [self.filter_scale * k for k in self.unpack(theta)["layers"]]
        return compose_kernels(layers)

    # -- maths in x -------------------------------------------------------
    #: zero padding of the composite correlation: None is "same" (S // 2),
    #: as the layered network of Goujon et al. computes it (a 13 x 13
    #: composite would leave few "valid" responses on small patches); FoE
    #: sets 0, the "valid" cliques of Roth and Black
    padding = None

    def _conv(self, x, kernel):
        return correlate(x, kernel, self.padding)

    def _conv_t(self, u, kernel):
        return correlate_t(u, kernel, self.padding)

    def _parts(self, theta):
        """Composite kernel and the weights exp(a), eps (1, K, 1, 1)."""
        p = self.unpack(theta)
        weights = torch.exp(p["log_weights"]).view(1, -1, 1, 1)
        eps = torch.exp(p["log_smoothings"]).view(1, -1, 1, 1)
        return self.composite(theta), weights, eps

    # the profile, on the responses u = W x: energy, slope and curvature
    def _energy(self, u, weights, eps):
        """sum_k sum_p psi_k(u_{k,p}) per image, shape (B,)."""
        return (weights * eps * _logcosh(u / eps)).flatten(1).sum(dim=1)

    def _slope(self, u, kernel, weights, eps):
        """``(field, kernel')`` with W'^T field = W^T psi'(u) (a profile may
        fold its weights into the kernel)."""
        return weights * torch.tanh(u / eps), kernel

    def _curvature(self, u, weights, eps):
        """psi''(u) (B, K, H, W); may overwrite ``u``."""
        t = torch.tanh(u / eps)
        return t.mul_(t).neg_().add_(1.0).mul_(weights / eps)

    def value(self, x, theta):
        kernel, weights, eps = self._parts(theta)
        return self._energy(self._conv(x, kernel), weights, eps)

    def grad(self, x, theta):
        kernel, weights, eps = self._parts(theta)
        u = self._conv(x, kernel)
        return self._conv_t(*self._slope(u, kernel, weights, eps))

    def hessian(self, x, theta):
        kernel, weights, eps = self._parts(theta)
        curvature = self._curvature(self._conv(x, kernel), weights, eps)

        def apply(v, rows=None):
            w = curvature if rows is None else curvature[rows]
            return self._conv_t(self._conv(v, kernel).mul_(w), kernel)

        return HessianOperator(apply)

    def mixed(self, x, theta, q, per_image=False):
        """grad_theta <grad_x R_theta(x_i), q_i> without the adjoint pass.

        Since <W'^T psi'(W x), q> = <psi'(W x), W' q> (the pair of
        :meth:`_slope`), autograd differentiates the right-hand side: the
        passes W x and W' q, then their kernel gradients only (x and q are
        constants): 4 correlations instead of the 5 of a backward pass
        through :meth:`grad` (``docs/maths.md`` section 3.3). Batch sum (P,)
        or, with ``per_image``, (B, P) by ``torch.func.vmap``.
        """
        theta, x, q = theta.detach(), x.detach(), q.detach()

        def inner(th, xb, qb):
            kernel, weights, eps = self._parts(th)
            field, kernel_t = self._slope(self._conv(xb, kernel), kernel, weights, eps)
            return (field * self._conv(qb, kernel_t)).sum()

        if not per_image:
            with torch.enable_grad():
                th = theta.clone().requires_grad_(True)
                (g,) = torch.autograd.grad(inner(th, x, q), th)
            return g

        def one(th, xi, qi):
            return inner(th, xi[None], qi[None])

        return torch.func.vmap(torch.func.grad(one), in_dims=(None, 0, 0))(theta, x, q)

    def work_flops(self, image_shape):
        """Convolution counts (:mod:`~benchmark_utils.work`) of the composite W.

        With P the correlation W x by the composite (K, C, S, S) kernel on one
        image (K H' W' responses p) and P' its adjoint, computed as the
        correlation of the zero-padded responses with the flipped kernel over
        the H x W image: grad = W^T psi'(W x), P + P' + 6 p; HVP with the
        cached curvature, P + P' + p; building the Hessian, P + 6 p; the mixed
        product (:meth:`mixed`), W x and W' q and the kernel gradient of
        each, 4 P + 15 p.
        """
        c, h, w = image_shape
        s = self.composite_size
        pad = s // 2 if self.padding is None else self.padding
        h_out, w_out = h + 2 * pad - s + 1, w + 2 * pad - s + 1
        fwd = correlation_flops(self.n_filters, c, s, h_out, w_out)
        adj = correlation_flops(c, self.n_filters, s, h, w)
        resp = float(self.n_filters * h_out * w_out)
        jvp = 4 * fwd + 15 * resp
        return {
            "grad": fwd + adj + 6 * resp,
            "hvp": fwd + adj + resp,
            "build": fwd + 6 * resp,
            "jvp": jvp,
            "jvp_per_image": jvp,
        }

    def lipschitz(self, theta):
        """sup_w lambda_max(sum_k c_k K_k(w)^H K_k(w)), c_k = exp(a_k) / eps_k.

        :func:`~.convolution.gram_norm_bound` on the composite kernel: a
        rigorous bound for every image size (``docs/regularisers.md``),
        cached until theta changes.
        """
        return cached_bound(self, theta, self._lipschitz)

    def _lipschitz(self, theta):
        p = self.unpack(theta)
        c = torch.exp(p["log_weights"] - p["log_smoothings"])
        return gram_norm_bound(self.composite(theta), c)
