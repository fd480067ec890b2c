"""Base class of every bilevel solver of the benchmark.

It owns what all solvers share, so that a solver file holds only its update
rule and its parameters:

- the benchopt callback loop (``sampling_strategy = "callback"``), where one
  callback "iteration" runs outer steps until the cost reaches the next
  checkpoint of the objective's cost grid, and stops at the cost budget;
- fresh counted oracles per run (:meth:`BilevelProblem.make_oracles`) and
  per-image warm-start memory (:class:`ImageMemory`);
- seeds from ``get_seed(use_repetition=True)``;
- divergence handling: when theta or the loss turns non-finite, or the loss
  explodes, the run stops, keeps its last finite theta, and is reported with
  ``diverged = 1`` instead of vanishing from the results;
- the result dict that carries theta and the cost counters to the objective.

Subclasses implement :meth:`BilevelSolver.step` (one outer iteration) and
optionally :meth:`BilevelSolver.check_parameters`, :meth:`BilevelSolver.init_state`
and :meth:`BilevelSolver.info`.
"""

from __future__ import annotations

import math

import torch
from benchopt import BaseSolver

from .memory import ImageMemory
from .validation import check_bool, check_choice, check_int, check_real

#: a loss this many times the first mini-batch loss counts as divergence
EXPLOSION_FACTOR = 1e4


class BilevelSolver(BaseSolver):
    """Shared machinery of the bilevel solvers (see module docstring)."""

    sampling_strategy = "callback"
    requirements = ["pip::torch==2.14.1"]

    # -- to override ------------------------------------------------------
    def check_parameters(self):
        """Raise ``ValueError`` naming a bad parameter and its allowed range."""

    def init_state(self):
        """Set up the solver's state at the start of a run (after oracles)."""

    def step(self):
        """One outer iteration: update ``self.theta`` using ``self.oracles``."""
        raise NotImplementedError

    def info(self):
        """Scalar diagnostics reported along the curve (e.g. step size)."""
        return {}

    # -- helpers for subclasses -------------------------------------------
    def require(self, name, ok, allowed):
        """Raise a one-line ``ValueError`` if parameter ``name`` is not ``ok``."""
        if not ok:
            raise ValueError(
                f"{self.name}: parameter {name}={getattr(self, name)!r} is "
                f"invalid; allowed: {allowed}"
            )

    def require_real(self, name, low=None, high=None, low_open=False, high_open=False):
        """Check that parameter ``name`` is a finite real in the range; store it."""
        value = check_real(
            getattr(self, name), name, low, high, low_open, high_open, self.name
        )
        setattr(self, name, value)

    def require_int(self, name, low=None, high=None):
        """Check that parameter ``name`` is an integer in [low, high]; store it."""
        setattr(self, name, check_int(getattr(self, name), name, low, high, self.name))

    def require_choice(self, name, choices):
        """Check that parameter ``name`` is one of ``choices``."""
        check_choice(getattr(self, name), name, choices, self.name)

    def require_bool(self, name):
        """Check that parameter ``name`` is a bool."""
        check_bool(getattr(self, name), name, self.name)

    def record_loss(self, loss):
        """Report the current (mini-batch) upper-level loss for divergence checks."""
        loss = float(loss)
        if self._loss_ref is None and math.isfinite(loss):
            self._loss_ref = max(loss, 1e-12)
        self._last_loss = loss

    # -- benchopt API -----------------------------------------------------
    def set_objective(self, problem, theta0, budget, checkpoints, device):
        self.problem = problem
        self.theta0 = theta0
        self.budget = int(budget)
        self.checkpoints = list(checkpoints)
        self.device = device
        self.seed = self.get_seed(use_repetition=True)
        self.check_parameters()
        self._reset()

    def get_next(self, stop_val):
        """Evaluate at every callback call: each call is one cost checkpoint."""
        return stop_val + 1

    def _reset(self):
        # drop the previous run's state first: it is as large as the data
        self.oracles = self.memory = None
        self.oracles = self.problem.make_oracles()
        self.memory = ImageMemory(self.oracles)
        self.theta = self.theta0.clone()
        self._theta_ok = self.theta.clone()
        self.n_outer = 0
        self.diverged = False
        self._loss_ref = None
        self._last_loss = float("nan")
        self.generator = torch.Generator().manual_seed(self.seed)

    def _is_diverging(self):
        if not bool(torch.isfinite(self.theta).all()):
            return True
        if not math.isfinite(self.oracles.lipschitz(self.theta)):
            return True
        loss = self._last_loss
        if self._loss_ref is not None and (
            not math.isfinite(loss) or loss > EXPLOSION_FACTOR * self._loss_ref
        ):
            return True
        return False

    def run(self, callback):
        self._reset()
        self.init_state()
        counters = self.oracles.counters
        targets = iter(self.checkpoints)
        while callback():
            if self.diverged:
                break
            target = next((t for t in targets if t > counters.cost), None)
            if target is None:
                break
            while counters.cost < target:
                self.step()
                self.n_outer += 1
                if self._is_diverging():
                    self.diverged = True
                    self.theta = self._theta_ok.clone()
                    break
                self._theta_ok = self.theta.detach().clone()

    def get_result(self):
        return dict(
            theta=self._theta_ok.detach().cpu(),
            n_outer=self.n_outer,
            diverged=int(self.diverged),
            info=self.info(),
            **{k: v for k, v in self.oracles.counters.as_dict().items() if k != "cost"},
        )
