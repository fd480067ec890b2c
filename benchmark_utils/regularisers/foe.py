"""Fields of Experts, smoothed-l1 experts (``docs/maths.md`` section 2.1):
the one-layer member of the ridge family (:mod:`.crr`); boundary, start and
bound in ``docs/regularisers.md``, "Fields of Experts"."""

from __future__ import annotations

import torch

from .crr import ConvexRidge


class FieldsOfExperts(ConvexRidge):
    """Fields of Experts regulariser (Roth and Black, IJCV 2009).

    Parameters
    ----------
    n_channels, n_filters, kernel_size : int
        C (1 or 3), K (>= 1) and the odd filter side s (>= 3 in grey).
    init_weight, init_smoothing : float
        Initial exp(a_k) and eps_k = exp(b_k) for every filter (> 0).
    boundary, init : str, optional
        One of :attr:`boundaries` and of :attr:`inits`. Default ``"mirror"``
        and ``"diff"``; ``"dct"`` with ``"valid"`` (the differences' start
        does harm there). ``ValueError`` for a value out of range.

    theta = [filters (K, C, s, s), a (K), b (K)], filters kept zero-mean.
    """

    boundaries = ("mirror", "valid")  # the defaults first (see ConvexRidge)
    inits = ("diff", "dct")
    name = "foe"

    def __init__(
        self,
        n_channels=1,
        n_filters=8,
        kernel_size=5,
        *,
        boundary=None,
        init=None,
        init_weight=2e-3,
        init_smoothing=0.2,
    ):
        if init is None and boundary == "valid":
            init = "dct"
        super().__init__(
            n_channels,
            n_filters,
            kernel_size,
            (),
            init_weight,
            init_smoothing,
            boundary=boundary,
            init=init,
        )

    # phi'(u) = u / sqrt(u^2 + eps^2), phi''(u) = eps^2 / (u^2 + eps^2)^(3/2)
    def _energy(self, u, weights, eps):
        phi = torch.sqrt(u * u + eps * eps) - eps
        return (phi.sum(dim=(2, 3)) * weights.flatten()).sum(dim=1)

    def _slope(self, u, kernel, weights, eps):
        e2 = eps * eps
        # in place (three passes over u) unless autograd records this call
        if torch.is_grad_enabled():
            dphi = u * torch.rsqrt(u * u + e2)
        else:
            dphi = torch.addcmul(e2, u, u).rsqrt_().mul_(u)
        return dphi, kernel * weights.view(-1, 1, 1, 1)

    def _curvature(self, u, weights, eps):
        e2 = eps * eps
        curvature = torch.addcmul(e2, u, u).rsqrt_().pow_(3)
        return curvature.mul_(e2 * weights)
