"""Convolutional input-convex neural network (ICNN) regulariser.

``docs/maths.md`` section 2.2; Amos, Xu, Kolter (ICML 2017), convolutional
as in Mukherjee et al. (arXiv 2008.02839), used by Salehi et al., arXiv
2511.06774, with the smoothed ReLU sigma(t) = beta softplus(t / beta).
Layers, analytic gradient and Hessian, and the Lipschitz bound:
``docs/regularisers.md``, "Input-convex neural network".
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
        The W_l, V_l and biases used are these factors times their theta
        entries (> 0; ``docs/regularisers.md``, "Defaults").

    Notes
    -----
    theta = [W_0, b_0, then per layer l >= 1: V_l, W_l, b_l, and last
    a = log w (H)]; ``unpack`` gives ``W``, ``V``, ``b`` (lists, unscaled),
    ``filters`` = W_0 and ``log_weights``.
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
        """Pre-activations u_l, l = 1..L (the W_l x as one correlation)."""
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
        """Convolution counts of the network (``docs/regularisers.md``)."""
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
        """Rigorous bound from the weights (``docs/regularisers.md``)."""
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
