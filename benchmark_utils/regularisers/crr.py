"""Convex ridge regularisers (CRR): the family FoE belongs to.

``docs/maths.md`` section 2.2; the model of Goujon, Neumayer, Bohra, Unser
(IEEE TCI 2023) as used by Salehi et al., arXiv 2511.06774, with a smooth
log-cosh profile. Gradient, Hessian, composite kernel and Lipschitz bound:
``docs/regularisers.md``, "Convex ridge regulariser".
"""

from __future__ import annotations

import math

import torch

from ..work import correlation_flops
from .base import HessianOperator, Regulariser, check_filters, check_positive
from .convolution import (
    bank_sizes,
    cached_bound,
    check_boundary,
    compose_kernels,
    dct_filters,
    difference_filters,
    filter_bank,
    filter_bank_t,
    gram_norm_bound,
    mirror_norm_bound,
    random_filters,
    zero_mean_,
)


def _logcosh(u):
    """log cosh(u), stable for large |u|: |u| + log1p(exp(-2|u|)) - log 2."""
    a = u.abs()
    return a + torch.log1p(torch.exp(-2.0 * a)) - math.log(2.0)


class ConvexRidge(Regulariser):
    """Convex ridge regulariser: multi-layer convolution, smooth profiles.

    The family's base, with the log-cosh profile; :class:`~.foe.FieldsOfExperts`
    changes the profile through :meth:`_energy`, :meth:`_slope` and
    :meth:`_curvature` (on the responses ``u = W x``).

    Parameters
    ----------
    n_channels : int
        Image channels C (1 or 3).
    n_filters, kernel_size : int
        Output channels K of W (>= 1) and the odd side s of every layer.
    hidden : tuple of int
        Channels of the intermediate layers (``()``: one layer).
    init_weight, init_smoothing : float
        Initial exp(a_k) and eps_k = exp(b_k) (> 0).
    filter_scale : float
        Layer kernels are ``filter_scale`` times their theta entries (> 0).
    boundary, init : str, optional
        One of :attr:`boundaries` (:data:`~.convolution.BOUNDARIES`) and of
        :attr:`inits` (the first layer's start); default the first of each.

    Raises
    ------
    ValueError
        For a parameter out of its range (one line naming it).

    Notes
    -----
    theta = [layer kernels, a (K), b (K)] (``docs/regularisers.md``);
    :meth:`project` keeps the first layer zero-mean over (C, s, s).
    """

    name = "crr"
    stacked = ("layers",)
    #: accepted ``boundary`` values, the default first
    boundaries = ("same", "mirror")
    #: accepted ``init`` values, the default first
    inits = ("gaussian", "diff")

    def __init__(
        self,
        n_channels=1,
        n_filters=32,
        kernel_size=5,
        hidden=(4, 8),
        init_weight=1e-2,
        init_smoothing=1e-2,
        filter_scale=1.0,
        boundary=None,
        init=None,
    ):
        super().__init__(n_channels)
        check_filters(self.n_channels, n_filters, kernel_size)
        self.boundary = check_boundary(
            self.boundaries[0] if boundary is None else boundary, self.boundaries
        )
        self.init = self.inits[0] if init is None else init
        if self.init not in self.inits:
            raise ValueError(f"init must be one of {self.inits}, got {init!r}")
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
        """Views ``layers`` (list), ``filters`` (the first), ``log_weights``,
        ``log_smoothings``; kernels are unscaled theta entries."""
        views = super().unpack(theta)
        views["filters"] = views["layers"][0]
        return views

    def _first_layer(self, shape, gen):
        """Initial first-layer filters (O, C, s, s), zero-mean, unit norm."""
        if self.init == "diff":
            return difference_filters(shape[0], shape[1], shape[2], gen)
        if self.init == "dct":
            return dct_filters(shape[0], shape[1], shape[2], gen)
        return random_filters(shape, gen, zero_mean=True)

    def initial_views(self, gen):
        """First layer by :attr:`init`, later ones Gaussian of unit-norm
        output filters; constant a and b."""
        parts = [
            (
                self._first_layer(shape, gen)
                if idx == 0
                else random_filters(shape, gen, False)
            )
            / self.filter_scale
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
    def _conv(self, x, kernel):
        return filter_bank(x, kernel, self.boundary)

    def _conv_t(self, u, kernel):
        return filter_bank_t(u, kernel, self.boundary)

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
        """``(field, kernel')`` with W'^T field = W^T psi'(u)."""
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
        """grad_theta <grad_x R_theta(x_i), q_i> as grad_theta <psi'(W x),
        W' q> (no adjoint pass; ``docs/regularisers.md``), summed or per image."""
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
        """Convolution counts of the composite W (``docs/regularisers.md``)."""
        c, h, w = image_shape
        s = self.composite_size
        (h_out, w_out), (h_adj, w_adj) = bank_sizes(h, w, s, self.boundary)
        fwd = correlation_flops(self.n_filters, c, s, h_out, w_out)
        adj = correlation_flops(c, self.n_filters, s, h_adj, w_adj)
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
        """Norm bound of the composite with weights exp(a_k) / eps_k, every
        image size (``docs/regularisers.md``), cached on theta."""
        return cached_bound(self, theta, self._lipschitz)

    def _lipschitz(self, theta):
        p = self.unpack(theta)
        c = torch.exp(p["log_weights"] - p["log_smoothings"])
        bound = mirror_norm_bound if self.boundary == "mirror" else gram_norm_bound
        return bound(self.composite(theta), c)
