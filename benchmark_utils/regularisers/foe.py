"""Fields of Experts with smoothed-l1 experts (``docs/maths.md`` section 2).

R_theta(x) = sum_k exp(a_k) sum_p phi_{eps_k}((c_k * x)_p),
phi_eps(t) = sqrt(t^2 + eps^2) - eps, eps_k = exp(b_k):
the one-layer member of the ridge family (:mod:`.crr`).

References: Roth and Black, "Fields of Experts", IJCV 2009; the FoE set-up of
Salehi et al., arXiv 2412.12049 (ISGD, 10 colour 7x7 filters) and
arXiv 2308.10098 (MAID, 48 grayscale 7x7 filters).
"""

from __future__ import annotations

import torch

from .convolution import dct_filters
from .crr import ConvexRidge


class FieldsOfExperts(ConvexRidge):
    """Fields of Experts regulariser.

    Parameters
    ----------
    n_channels : int
        Image channels C (1 or 3). Each filter maps C channels to 1.
    n_filters : int
        Number of filters K (>= 1).
    kernel_size : int
        Odd filter side s (>= 3 in grayscale, >= 1 in colour).
    init_weight : float
        Initial exp(a_k) for every filter (> 0).
    init_smoothing : float
        Initial eps_k = exp(b_k) for every filter (> 0).

    The start (:meth:`initial_views`) is a start that does no harm: the
    lowest-frequency DCT filters with exp(a) = 0.002 and eps = 0.2, a weak and
    nearly quadratic smoothness prior (curvature exp(a) / eps = 0.01 per
    filter), under which each default task's initial reconstruction is at
    least as good as its measurement on every training image
    (``docs/regularisers.md``; ``tests/test_bounds.py`` checks train and test).

    Notes
    -----
    theta = [filters (K*C*s*s), log-weights a (K), log-smoothings b (K)]
    (``docs/regularisers.md``). Filters are kept zero-mean over (C, s, s) by
    :meth:`project`, so constant images are not penalised.
    """

    name = "foe"
    #: "valid" cliques (Roth and Black): no response touches a pixel outside
    #: the image, so the border is not pulled towards zero
    #: (``docs/regularisers.md``, "Boundary")
    padding = 0

    def __init__(
        self,
        n_channels=1,
        n_filters=8,
        kernel_size=5,
        init_weight=2e-3,
        init_smoothing=0.2,
    ):
        super().__init__(
            n_channels, n_filters, kernel_size, (), init_weight, init_smoothing
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

    def initial_views(self, gen):
        """DCT filters (:func:`~.convolution.dct_filters`), constant a and b."""
        filters = dct_filters(self.n_filters, self.n_channels, self.kernel_size, gen)
        return [
            filters / self.filter_scale,
            torch.full((self.n_filters,), self.init_log_weight, dtype=torch.float64),
            torch.full((self.n_filters,), self.init_log_smoothing, dtype=torch.float64),
        ]
