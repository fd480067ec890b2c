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

    Notes
    -----
    theta = [filters (K*C*s*s), log-weights a (K), log-smoothings b (K)]
    (``docs/regularisers.md``). Filters are kept zero-mean over (C, s, s) by
    :meth:`project`, so constant images are not penalised.
    """

    name = "foe"

    def __init__(
        self,
        n_channels=1,
        n_filters=8,
        kernel_size=5,
        init_weight=0.1,
        init_smoothing=0.05,
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

    def lipschitz(self, theta, image_shape=None):
        """L_R = sum_k exp(a_k) ||c_k||_op^2 / eps_k (``docs/regularisers.md``).

        Parameters
        ----------
        theta : torch.Tensor
            Flat parameters.
        image_shape : tuple of int, optional
            (C, H, W). With it, ||c_k||_op is the maximum of the filter's DFT
            magnitude on the (H + s - 1, W + s - 1) grid (nearly tight);
            without it, the Young bound sqrt(sum_c ||c_{k,c}||_1^2) (valid for
            every size, looser).
        """
        p = self.unpack(theta.detach())
        filters = p["filters"]
        weights, eps = torch.exp(p["log_weights"]), torch.exp(p["log_smoothings"])
        if image_shape is None:
            op2 = filters.abs().sum(dim=(2, 3)).pow(2).sum(dim=1)
        else:
            s = self.kernel_size
            grid = (image_shape[-2] + s - 1, image_shape[-1] + s - 1)
            spec = torch.fft.rfft2(filters, s=grid)
            op2 = spec.abs().pow(2).sum(dim=1).flatten(1).amax(dim=1)
        return float((weights * op2 / eps).sum())
