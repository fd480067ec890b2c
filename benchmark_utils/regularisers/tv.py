"""Smoothed isotropic total variation (``docs/maths.md`` section 2).

The classical one-parameter baseline (Rudin, Osher, Fatemi 1992), smoothed so
that its Hessian exists, with a learnable strength and smoothing (two scalars),
as used as the simplest learnable regulariser in the bilevel literature (e.g.
the comparison regularisers of Salehi et al., arXiv 2511.06774):

    R_theta(x) = lambda sum_c sum_p ( sqrt(|(D x_c)_p|^2 + eps^2) - eps ),
    lambda = exp(s a), eps = exp(s b), theta = [a, b],

where D x_c = (D_h x_c, D_v x_c) are forward differences of channel c with
Neumann boundary (the difference leaving the image is 0). Colour channels are
regularised separately (channel-wise isotropic TV). The fixed factor s
(``log_scale``, default 3) makes a step of size t on theta act like a step of
t s^2 on (log lambda, log eps) (why: ``docs/regularisers.md``).

With g = (D x_c)_p in R^2 and r = sqrt(|g|^2 + eps^2), the pixel term
h(g) = r - eps has

    grad h = g / r,   Hess h = I / r - g g^T / r^3,   0 <= Hess h <= I / r <= I / eps,

so

    grad_x R = lambda D^T (g / r),
    Hess_x R v = lambda D^T ( (D v) / r - g <g, D v> / r^3 ),
    ||Hess_x R|| <= lambda ||D||^2 / eps <= 8 lambda / eps,

using ||D||^2 = ||D_h^T D_h + D_v^T D_v|| <= ||D_h||^2 + ||D_v||^2 <= 4 + 4
(``docs/regularisers.md``).

Everything is analytic; the Hessian operator caches 1/r and g / r^(3/2), so a
product costs two difference passes. D and D^T are written with ``F.pad``
(no in-place slicing) so that the mixed product works under ``torch.func.vmap``.
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
        Image channels C (1 or 3); each channel is regularised separately.
    n_filters, kernel_size : int, optional
        Unused (TV has fixed difference filters); accepted so that the
        objective can build every regulariser with the same call.
    init_weight : float
        Initial strength lambda = exp(a) (> 0).
    init_smoothing : float
        Initial smoothing eps = exp(s b) (> 0), on the scale of image
        gradients (images in [0, 1]).
    log_scale : float
        The factor s (> 0) in lambda = exp(s a), eps = exp(s b).

    Notes
    -----
    theta = [a, b] (scaled log-strength and log-smoothing). No constraint, so
    :meth:`project` is the identity. ``unpack`` gives the views ``a`` and
    ``b`` (shape (1,) each) and ``strength`` / ``smoothing`` (lambda, eps).
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
        """Views ``a`` (1,), ``b`` (1,); ``strength``, ``smoothing`` (computed)."""
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
        """r = sqrt(|g|^2 + eps^2) per pixel and channel, shape (B, C, H, W)."""
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
        """Pixelwise counts (:mod:`~benchmark_utils.work`), per value: the
        differences D (2) and D^T (4), the radius (4) and the scaling (3):
        grad 13; HVP (D v, the 2 x 2 projection, D^T) 16; building it (D x
        and the radius) 6; the mixed product by autograd 2.5 gradients."""
        n = float(math.prod(image_shape))
        return {
            "grad": 13 * n,
            "hvp": 16 * n,
            "build": 6 * n,
            "jvp": 32.5 * n,
            "jvp_per_image": 32.5 * n,
        }

    def lipschitz(self, theta):
        """L_R = 8 lambda / eps >= lambda ||D||^2 / eps (see module notes)."""
        weight, eps = self._parts(theta.detach())
        return float(DIFF_NORM_SQ * weight / eps)
