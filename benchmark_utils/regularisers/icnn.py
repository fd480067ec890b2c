"""Convolutional input-convex neural network (ICNN) regulariser.

``docs/maths.md`` section 2; Amos, Xu, Kolter, "Input convex neural networks"
(ICML 2017), in the convolutional form of Mukherjee et al., "Learned convex
regularizers for inverse problems" (arXiv 2008.02839), as used by Salehi et
al., arXiv 2511.06774, with a smooth activation so that the Hessian exists.
With L layers, H hidden channels and s x s convolutions:

    u_1 = W_0 x + b_0,
    u_l = V_(l-1) z_(l-1) + W_(l-1) x + b_(l-1)   (l = 2..L),
    z_l = sigma(u_l),
    R_theta(x) = sum_p sum_h w_h (z_L)_(h,p),   w_h = exp(a_h),

with sigma(t) = beta softplus(t / beta) (a smoothed ReLU of width beta),
0 < sigma' < 1 and 0 < sigma'' <= 1 / (4 beta). The hidden weights V_l >= 0
are kept non-negative by :meth:`ICNN.project` (clamping), the output weights
w > 0 through their log-parametrisation, the W_l and biases are free. Then
each z_l is convex in x (a non-negative combination of convex functions,
composed with a convex non-decreasing sigma), so R is convex.

Gradient (analytic backward pass) with e_l = dR / du_l:

    e_L = w . sigma'(u_L),   e_l = sigma'(u_l) . V_l^T e_(l+1),
    grad_x R = sum_l W_(l-1)^T e_l.

Hessian-vector product (analytic forward-over-backward). With J_l = du_l/dx,
Hess_x R = sum_l J_l^T diag(c_l) J_l, c_L = w . sigma''(u_L) and
c_l = sigma''(u_l) . V_l^T e_(l+1) (l < L), all >= 0. In code: the tangents
du_1 = W_0 v, du_l = V_(l-1) (sigma'(u_(l-1)) . du_(l-1)) + W_(l-1) v, then
de_L = c_L . du_L, de_l = c_l . du_l + sigma'(u_l) . V_l^T de_(l+1) and
Hess v = sum_l W_(l-1)^T de_l. The operator caches sigma'(u_l) and c_l, so a
product costs one forward and one backward pass of convolutions. All the W_l
act on x, so they are applied as one convolution with L H output channels,
and sum_l W_(l-1)^T (.) as one transposed convolution.

Lipschitz bound (no power iteration): ||Hess|| <= sum_l ||diag(sqrt(cbar_l)) J_l||^2
with channel-wise bounds cbar_l >= c_l computed from the weights, each term
bounded by :func:`~.convolution.gram_norm_bound` and the triangle inequality
(proof sketch: ``docs/regularisers.md``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..work import correlation_flops
from .base import HessianOperator, Regulariser, check_filters, check_positive
from .convolution import (
    cached_bound,
    correlate,
    correlate_t,
    gram_norm_bound,
    random_filters,
)


class ICNN(Regulariser):
    """Convolutional input-convex network with a smoothed-ReLU activation.

    Parameters
    ----------
    n_channels : int
        Image channels C (1 or 3).
    n_filters : int
        Hidden channels H of every layer (>= 1).
    kernel_size : int
        Odd side s of every convolution (W_l and V_l), >= 3 in grayscale
        (the first-layer filters are initialised zero-mean).
    n_layers : int
        Number of layers L (>= 1); L = 1 is a Fields-of-Experts-like model
        with softplus experts.
    smoothing : float
        Width beta of the smoothed ReLU (> 0, fixed, not learned).
    init_scale : float
        Initial output weights w_h (> 0).
    weight_scale, hidden_scale, bias_scale : float
        The convolutions used are ``weight_scale * theta_part`` (W_l) and
        ``hidden_scale * theta_part`` (V_l), the biases
        ``bias_scale * theta_part`` (all > 0). A factor s multiplies that
        block's hypergradient by s and the curvature of the upper-level loss
        along it by s^2 (how the defaults were chosen: ``docs/regularisers.md``).

    Notes
    -----
    theta = [W_0 (H, C, s, s), b_0 (H), then for l = 1..L-1: V_l (H, H, s, s),
    W_l (H, C, s, s), b_l (H), and last a = log w (H)]. ``unpack`` gives
    ``filters`` = W_0 (the first-layer filters), ``W``, ``V``, ``b`` (lists)
    and ``log_weights`` (a); the kernels are unscaled theta entries.
    """

    name = "icnn"
    stacked = ("W", "V", "b")

    def __init__(
        self,
        n_channels=1,
        n_filters=16,
        kernel_size=5,
        n_layers=2,
        smoothing=0.02,
        init_scale=0.01,
        weight_scale=0.3,
        hidden_scale=1.0,
        bias_scale=0.5,
    ):
        super().__init__(n_channels)
        check_filters(self.n_channels, n_filters, kernel_size)
        if int(n_layers) < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers!r}")
        check_positive(
            smoothing=smoothing,
            init_scale=init_scale,
            weight_scale=weight_scale,
            hidden_scale=hidden_scale,
            bias_scale=bias_scale,
        )
        self.n_filters = int(n_filters)
        self.kernel_size = int(kernel_size)
        self.n_layers = int(n_layers)
        self.smoothing = float(smoothing)
        self.init_scale = float(init_scale)
        self.weight_scale = float(weight_scale)
        self.hidden_scale = float(hidden_scale)
        self.bias_scale = float(bias_scale)
        h, c, s = self.n_filters, self.n_channels, self.kernel_size
        w_shape, v_shape = (h, c, s, s), (h, h, s, s)
        self.layout = [("W", w_shape), ("b", (h,))]
        for _ in range(1, self.n_layers):
            self.layout += [("V", v_shape), ("W", w_shape), ("b", (h,))]
        self.layout.append(("log_weights", (h,)))

    # -- parameters -------------------------------------------------------
    def unpack(self, theta):
        """Views ``W``, ``V``, ``b`` (lists, per layer), ``log_weights`` and
        ``filters`` (= W_0, unscaled theta entries)."""
        views = super().unpack(theta)
        views["filters"] = views["W"][0]
        return views

    def initial_views(self, gen):
        """W_l: zero-mean random filters of unit norm; V_l >= 0 averaging
        kernels of unit sum per output channel, times 1/2; b = 0; w = init_scale."""
        parts = []
        for key, sh in self.layout:
            if key == "W":
                parts.append(random_filters(sh, gen, True) / self.weight_scale)
            elif key == "V":
                k = torch.rand(sh, generator=gen, dtype=torch.float64)
                k = 0.5 * k / k.sum(dim=(1, 2, 3), keepdim=True)
                parts.append(k / self.hidden_scale)
            elif key == "b":
                parts.append(torch.zeros(sh, dtype=torch.float64))
            else:
                log_w = math.log(self.init_scale)
                parts.append(torch.full(sh, log_w, dtype=torch.float64))
        return parts

    def project(self, theta):
        """Clamp the hidden weights V_l at 0 (projection onto V_l >= 0)."""
        theta = theta.clone()
        for v in self.unpack(theta)["V"]:
            v.clamp_(min=0)
        return theta

    # -- maths in x -------------------------------------------------------
    def _weights(self, theta):
        """Scaled weights: W_l (list), all W_l stacked (L H, C, s, s), V_l
        (list), all biases (1, L H, 1, 1) and the output weights w."""
        p = self.unpack(theta)
        ws = [self.weight_scale * w for w in p["W"]]
        return (
            ws,
            torch.cat(ws, dim=0),
            [self.hidden_scale * v for v in p["V"]],
            self.bias_scale * torch.cat(p["b"]).view(1, -1, 1, 1),
            torch.exp(p["log_weights"]).view(1, -1, 1, 1),
        )

    def _act(self, u):
        beta = self.smoothing
        return beta * F.softplus(u / beta)

    def _forward(self, x, w_all, Vs, b_all):
        """Pre-activations u_l, l = 1..L.

        Every W_l acts on x, so the L convolutions are one (with L H outputs).
        """
        ux = torch.split(correlate(x, w_all) + b_all, self.n_filters, dim=1)
        us = [ux[0]]
        for l in range(1, self.n_layers):
            us.append(ux[l] + correlate(self._act(us[-1]), Vs[l - 1]))
        return us

    def value(self, x, theta):
        _, w_all, Vs, b_all, w = self._weights(theta)
        us = self._forward(x, w_all, Vs, b_all)
        return (w * self._act(us[-1])).flatten(1).sum(dim=1)

    def _backward(self, x, theta):
        """sigma'(u_l), e_l and V_l^T e_(l+1), l = 1..L (e from the top)."""
        _, w_all, Vs, b_all, w = self._weights(theta)
        us = self._forward(x, w_all, Vs, b_all)
        beta = self.smoothing
        dsig = [torch.sigmoid(u / beta) for u in us]
        es = [None] * self.n_layers
        es[-1] = w * dsig[-1]
        vte = [None] * self.n_layers  # V_l^T e_(l+1), for l < L
        for l in range(self.n_layers - 2, -1, -1):
            vte[l] = correlate_t(es[l + 1], Vs[l])
            es[l] = dsig[l] * vte[l]
        return w_all, Vs, w, dsig, es, vte

    def grad(self, x, theta):
        # sum_l W_l^T e_l as one transposed convolution of the stacked e_l
        w_all, _, _, _, es, _ = self._backward(x, theta)
        return correlate_t(torch.cat(es, dim=1), w_all)

    def hessian(self, x, theta):
        w_all, Vs, w, dsig, _, vte = self._backward(x, theta)
        inv_beta = 1.0 / self.smoothing
        # sigma''(u) = sigma'(u) (1 - sigma'(u)) / beta
        curv = [d * (1 - d) * inv_beta for d in dsig]
        curv[-1] = curv[-1] * w
        for l in range(self.n_layers - 1):
            curv[l] = curv[l] * vte[l]
        n_layers, h = self.n_layers, self.n_filters

        def apply(v, rows=None):
            ds = dsig if rows is None else [d[rows] for d in dsig]
            cs = curv if rows is None else [c[rows] for c in curv]
            dv = torch.split(correlate(v, w_all), h, dim=1)  # W_l v, all l
            du = [dv[0]]
            for l in range(1, n_layers):
                du.append(dv[l] + correlate(ds[l - 1] * du[l - 1], Vs[l - 1]))
            de = [None] * n_layers
            de[-1] = cs[-1] * du[-1]
            for l in range(n_layers - 2, -1, -1):
                de[l] = cs[l] * du[l] + ds[l] * correlate_t(de[l + 1], Vs[l])
            return correlate_t(torch.cat(de, dim=1), w_all)

        return HessianOperator(apply)

    def work_flops(self, image_shape):
        """Convolution counts (:mod:`~benchmark_utils.work`) of the network.

        F1 = the L first-layer correlations of x (one with L H outputs), FV =
        one hidden correlation (H -> H), all "same" size, each adjoint as
        costly, and 10 pixelwise operations per hidden value (p):
        grad (forward, backward) 2 F1 + 2 (L - 1) FV + p; HVP (tangent
        forward and backward) the same + p; building the Hessian (forward and
        the backward V_l^T e_(l+1)) F1 + 2 (L - 1) FV + p; the mixed product
        by autograd through one gradient, 5 F1 + 6 (L - 1) FV + 3 p (the
        forward, then the input and filter gradients of every correlation but
        the input gradient of W x).
        """
        c, h, w = image_shape
        hid, s, n = self.n_filters, self.kernel_size, self.n_layers
        first = correlation_flops(n * hid, c, s, h, w)
        hidden = correlation_flops(hid, hid, s, h, w)
        resp = 10.0 * n * hid * h * w
        grad = 2 * first + 2 * (n - 1) * hidden + resp
        return {
            "grad": grad,
            "hvp": grad + resp,
            "build": first + 2 * (n - 1) * hidden + resp,
            "jvp": 5 * first + 6 * (n - 1) * hidden + 3 * resp,
            "jvp_per_image": 5 * first + 6 * (n - 1) * hidden + 3 * resp,
        }

    def lipschitz(self, theta):
        """Rigorous bound from the weights (see the module notes)."""
        return cached_bound(self, theta, self._lipschitz)

    def _lipschitz(self, theta):
        Ws, _, Vs, _, w = self._weights(theta)
        w = w.flatten().double()
        taps = [v.double().clamp_min(0).sum(dim=(2, 3)) for v in Vs]  # (out, in)
        curv_max = 1.0 / (4.0 * self.smoothing)
        # channel-wise bounds on e_l and c_l, from the top
        ebar = [None] * self.n_layers
        ebar[-1] = w
        for l in range(self.n_layers - 2, -1, -1):
            ebar[l] = taps[l].T @ ebar[l + 1]
        cbar = [curv_max * e for e in ebar]
        total = 0.0
        j_norm = 0.0  # bound on ||J_(l-1)|| (unweighted)
        for l in range(self.n_layers):
            jw = math.sqrt(gram_norm_bound(Ws[l], cbar[l]))
            if l > 0:
                # V >= 0: |V(omega)| <= V(0) entrywise, so the norm is that
                # of the tap sums, exactly
                vw = cbar[l].sqrt()[:, None] * taps[l - 1]
                jw += float(torch.linalg.matrix_norm(vw, ord=2)) * j_norm
            total += jw * jw
            if l < self.n_layers - 1:
                j_plain = math.sqrt(gram_norm_bound(Ws[l]))
                if l > 0:
                    v_norm = float(torch.linalg.matrix_norm(taps[l - 1], ord=2))
                    j_plain += v_norm * j_norm
                j_norm = j_plain
        return total
