"""Base of the full-batch adaptive solvers, HOAG and MAID (``docs/maths.md`` s. 4-5).

Both take every step on ALL training images, with lower-level solves and
conjugate gradients run to given accuracies (warm-started from the per-image
memory) rather than for a fixed number of iterations. They share:

- the full-batch index ``self.idx``;
- the cap :data:`MAX_LL_ITER` on the iterations of one lower-level solve;
- the accuracy floor. In float32 the lower-level gradient norm cannot be
  pushed much below 1e-4 on the default problem (rounding), so accuracies
  are floored at 100 machine epsilons times max_i ||A^T y_i||
  (``eps_floor``), and the floor is raised to twice the achieved gradient
  norm whenever a solve stops at its iteration cap (:meth:`raise_floor`),
  so that later steps do not spin at the cap;
- :meth:`FullBatchSolver.hypergradient`, the inexact IFT hypergradient
  (:func:`~benchmark_utils.hypergradient.inexact_hypergradient`) on all
  images, and :meth:`FullBatchSolver.solve`, a lower-level solve alone (MAID's
  trial points).
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
    """Shared state and solves of HOAG and MAID (see module docstring).

    Attributes
    ----------
    idx : torch.Tensor of int64
        All training images.
    tiny : float
        ``FLOOR_EPS`` machine epsilons of the problem's dtype.
    eps_floor : float
        Current floor of the lower-level accuracy.
    """

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

        Parameters
        ----------
        eps, delta : float
            Lower-level and conjugate-gradient tolerances.
        relative_delta : bool
            Residual relative to ||grad l_i|| (see ``inexact_hypergradient``).
        lower : LowerLevelResult, optional
            A lower-level result already certified at ``self.theta`` to
            ``eps``: it is reused and the solve skipped.

        Returns
        -------
        HypergradientResult
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
