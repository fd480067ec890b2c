"""Base of the full-batch adaptive solvers, HOAG and MAID.

Steps on ALL training images, solves and conjugate gradients run to given
accuracies, floored as in ``docs/maths.md`` section 5.2, "Floors and caps".
"""

from __future__ import annotations

import torch

from .bilevel_solver import BilevelSolver
from .hypergradient import inexact_hypergradient
from .lower_level import batch_norm, solve_lower_level

#: cap on the iterations of one lower-level solve
MAX_LL_ITER = 2_000
#: the accuracy floor in machine epsilons of the problem's dtype
FLOOR_EPS = 100


class FullBatchSolver(BilevelSolver):
    """Shared state and solves of HOAG and MAID: ``idx`` (all images), ``tiny``
    (``FLOOR_EPS`` machine epsilons) and ``eps_floor`` (the current floor)."""

    def init_state(self):
        o = self.oracles
        self.idx = torch.arange(o.n_images, device=self.device)
        tiny = FLOOR_EPS * torch.finfo(o.dtype).eps
        self.tiny = float(tiny)
        self.eps_floor = float(tiny * batch_norm(o.initial_x(self.idx)).max())

    def raise_floor(self, lower):
        """After a solve stopped at its cap, floor eps at 2 max_i ||grad_x E_i||."""
        if lower.hit_cap:
            self.eps_floor = max(self.eps_floor, 2 * float(lower.grad_norm.max()))

    def solve(self, theta, x0, eps):
        """Lower-level solve of all images at ``theta`` to gradient norm ``eps``."""
        res = solve_lower_level(
            self.oracles, theta, x0, self.idx, eps, max_iter=MAX_LL_ITER
        )
        self.raise_floor(res)
        return res

    def hypergradient(self, eps, delta, relative_delta=False, lower=None):
        """Inexact hypergradient of all images at ``self.theta``; updates the memory.

        ``eps``, ``delta``: lower-level and CG tolerances (``relative_delta``:
        relative to ||grad l_i||); ``lower``: a result already certified at
        ``self.theta`` to ``eps``, reused instead of a solve. Returns the
        :class:`~benchmark_utils.hypergradient.HypergradientResult`.
        """
        hg = inexact_hypergradient(
            self.oracles,
            self.theta,
            self.idx,
            eps,
            delta,
            memory=self.memory,
            max_ll_iter=MAX_LL_ITER,
            relative_delta=relative_delta,
            lower=lower,
        )
        if lower is None:
            self.raise_floor(hg.lower)
        return hg
