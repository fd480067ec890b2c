"""The learning problem handed to solvers (``docs/maths.md`` section 1).

:class:`BilevelProblem` keeps the training images, measurements, operator and
regulariser private: a solver can only ask it for a fresh set of counted
oracles (:meth:`BilevelProblem.make_oracles`), so everything it spends is
counted by :class:`~benchmark_utils.oracles.CountedOracles`.
"""

from __future__ import annotations

import numpy as np

from .oracles import CountedOracles
from .validation import check_mu


class BilevelProblem:
    """Training problem: images, measurements, operator, regulariser and mu.

    Parameters
    ----------
    regulariser : Regulariser
    forward : ForwardOperator
    x_train, y_train : torch.Tensor
        Clean training images and their frozen measurements (n, C, H, W).
    mu : float
        Ridge weight of the lower level; must make it strongly convex.
    """

    def __init__(self, regulariser, forward, x_train, y_train, mu):
        self._regulariser = regulariser
        self._forward = forward
        self._x = x_train
        self._y = y_train
        self._mu = check_mu(mu, forward)

    @property
    def n_images(self):
        return self._x.shape[0]

    def init_theta(self, seed):
        """Initial parameters drawn from ``seed``, feasible, in the data's dtype."""
        reg, x = self._regulariser, self._x
        return reg.project(reg.init_theta(seed, dtype=x.dtype, device=x.device))

    def make_oracles(self):
        """A fresh :class:`CountedOracles` with all counters at zero."""
        return CountedOracles(
            self._regulariser, self._forward, self._x, self._y, mu=self._mu
        )


def cost_checkpoints(budget, n_checkpoints, first_fraction=0.02):
    """Costs at which a run is evaluated: geometric from a fraction to ``budget``.

    Every solver is evaluated at the first step that reaches each checkpoint,
    so the curves of all solvers and repetitions share one cost grid.
    """
    if budget <= 0:
        raise ValueError(f"budget must be > 0, got {budget!r}")
    if n_checkpoints < 1:
        raise ValueError(f"n_checkpoints must be >= 1, got {n_checkpoints!r}")
    if n_checkpoints == 1:
        return [int(budget)]
    # float: a budget beyond int64 would give numpy an object array
    grid = np.geomspace(first_fraction * float(budget), float(budget), n_checkpoints)
    return sorted({max(1, int(round(c))) for c in grid})
