"""Smoothed isotropic total variation (``docs/maths.md`` section 2.2).

R_theta(x) = lambda sum_c sum_p (sqrt(|(D x_c)_p|^2 + eps^2) - eps),
lambda = exp(s a), eps = exp(s b), D forward differences with Neumann
boundary (Rudin, Osher, Fatemi 1992, smoothed). Gradient, Hessian, bound
and the factor s: ``docs/regularisers.md``, "Smoothed total variation".
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .base import HessianOperator, Regulariser, check_positive

#: ||D||^2 <= 8 for 2D forward differences with Neumann boundary.
DIFF_NORM_SQ = 8.0


def _diff(x):
    """Forward differences (B, C, 2, H, W): [D_h x, D_v x], 0 at the far edge."""
    dh = F.pad(x[..., :, 1:] - x[..., :, :-1], (0, 1))
    dv = F.pad(x[..., 1:, :] - x[..., :-1, :], (0, 0, 0, 1))
    return torch.stack((dh, dv), dim=-3)


def _diff_t(g):
    """Exact adjoint of :func:`_diff` (a negative divergence)."""
    uh, uv = g.unbind(dim=-3)
    uh = uh[..., :, :-1]
    uv = uv[..., :-1, :]
    out_h = F.pad(uh, (1, 0)) - F.pad(uh, (0, 1))
    out_v = F.pad(uv, (0, 0, 1, 0)) - F.pad(uv, (0, 0, 0, 1))
    return out_h + out_v


class SmoothedTV(Regulariser):
    """Smoothed total variation with learnable strength and smoothing.

    Parameters
    ----------
    n_channels : int
        Image channels C (1 or 3), regularised separately.
    n_filters, kernel_size : int, optional
        Unused; accepted so that every regulariser has the same constructor.
    init_weight, init_smoothing : float
        Initial lambda and eps (> 0; eps on the scale of image gradients).
    log_scale : float
        The factor s (> 0).

    Notes
    -----
    theta = [a, b]; ``unpack`` adds ``strength`` and ``smoothing``.
    """

    name = "tv"

    def __init__(
        self,
        n_channels=1,
        n_filters=None,
        kernel_size=None,
        init_weight=0.005,
        init_smoothing=0.02,
        log_scale=3.0,
    ):
        super().__init__(n_channels)
        check_positive(
            init_weight=init_weight, init_smoothing=init_smoothing, log_scale=log_scale
        )
        self.log_scale = float(log_scale)
        self.init_log_weight = math.log(init_weight)
        self.init_log_smoothing = math.log(init_smoothing)
        self.layout = [("a", (1,)), ("b", (1,))]

    # -- parameters -------------------------------------------------------
    def unpack(self, theta):
        """Views ``a``, ``b`` (1,) and ``strength``, ``smoothing`` (computed)."""
        views = super().unpack(theta)
        views["strength"] = torch.exp(self.log_scale * views["a"])
        views["smoothing"] = torch.exp(self.log_scale * views["b"])
        return views

    def initial_views(self, gen):
        """Deterministic log(init_weight) / s and log(init_smoothing) / s."""
        return [
            torch.tensor([value], dtype=torch.float64) / self.log_scale
            for value in (self.init_log_weight, self.init_log_smoothing)
        ]

    # -- maths in x -------------------------------------------------------
    def _parts(self, theta):
        scaled = self.log_scale * theta
        return torch.exp(scaled[0]), torch.exp(scaled[1])

    @staticmethod
    def _radius(g, eps):
        """r = sqrt(|g|^2 + eps^2), shape (B, C, H, W)."""
        return torch.sqrt(g.pow(2).sum(dim=-3) + eps * eps)

    def value(self, x, theta):
        weight, eps = self._parts(theta)
        r = self._radius(_diff(x), eps)
        return weight * (r - eps).flatten(1).sum(dim=1)

    def grad(self, x, theta):
        weight, eps = self._parts(theta)
        g = _diff(x)
        r = self._radius(g, eps)
        return _diff_t(g * (weight / r).unsqueeze(-3))

    def hessian(self, x, theta):
        weight, eps = self._parts(theta)
        g = _diff(x)
        r = self._radius(g, eps)
        inv_r = (weight / r).unsqueeze(-3)  # lambda / r
        n = g * (weight.sqrt() * r.pow(-1.5)).unsqueeze(-3)  # sqrt(lambda) g / r^1.5

        def apply(v, rows=None):
            ir = inv_r if rows is None else inv_r[rows]
            nn = n if rows is None else n[rows]
            dv = _diff(v)
            proj = (nn * dv).sum(dim=-3, keepdim=True)
            return _diff_t(dv * ir - nn * proj)

        return HessianOperator(apply)

    def work_flops(self, image_shape):
        """Pixelwise counts per value (``docs/regularisers.md``)."""
        n = float(math.prod(image_shape))
        return {
            "grad": 13 * n,
            "hvp": 16 * n,
            "build": 6 * n,
            "jvp": 32.5 * n,
            "jvp_per_image": 32.5 * n,
        }

    def lipschitz(self, theta):
        """L_R = 8 lambda / eps >= lambda ||D||^2 / eps (docs/regularisers.md)."""
        weight, eps = self._parts(theta.detach())
        return float(DIFF_NORM_SQ * weight / eps)
