"""Base class of every bilevel solver: the benchopt callback loop and its limits.

A solver file holds only its update rule (:meth:`BilevelSolver.step`) and
parameters; this base owns the run: callbacks at the objective's cost
checkpoints, the budget and deadline (``docs/limits.md``), fresh counted
oracles and warm-start memory per run, seeds, the divergence and stall rules
and the ``status`` of the run (:data:`STATUS_CODES`).
"""

from __future__ import annotations

import math
import time
import warnings

import torch
from benchopt import BaseSolver

from .memory import ImageMemory
from .oracles import LimitReached
from .validation import check_bool, check_choice, check_int, check_real

#: a loss this many times the first mini-batch loss counts as divergence
EXPLOSION_FACTOR = 1e4
#: a Lipschitz bound L(theta) this many times L(theta0) counts as divergence
LIPSCHITZ_FACTOR = 1e3
#: a strong-convexity modulus m(theta) below m(theta0) / this is divergence
CONVEXITY_FACTOR = 1e3
#: this many outer steps in a row with an inner solve at its cap: divergence
CAP_HIT_STEPS = 5
#: the run stops when the time left is below this many times the longest
#: evaluation so far, so that its final evaluation ends before the deadline
EVAL_RESERVE = 1.5

#: ``status`` of a run (the objective's ``status`` column), see docs/limits.md
STATUS_CODES = {
    "ok": "running, or ended at the cost budget between two steps",
    "budget": "ended at the cost budget inside a step (step discarded)",
    "timeout": "ended at the cell's deadline (step discarded)",
    "diverged": "stopped by a divergence rule (last good theta kept)",
    "stalled": "stopped by the solver, or no progress by the budget (stop_reason)",
}
#: statuses that a report marks like a failure
FAILED_STATUS = ("timeout", "diverged", "stalled")


def benchopt_deadline(callback):
    """The cell's deadline (a ``time.time()`` value) or None.

    benchopt 1.10 converts ``--timeout`` into
    ``stopping_criterion._deadline = time.time() + timeout`` when it sets up
    a cell (``StoppingCriterion.get_runner_instance``) and only checks it at
    evaluations; the callback passed to ``run`` carries that stopping
    criterion. None with ``--no-timeout`` or a bare callable.
    """
    criterion = getattr(callback, "stopping_criterion", None)
    deadline = getattr(criterion, "_deadline", None)
    return None if deadline is None else float(deadline)


class BilevelSolver(BaseSolver):
    """Shared machinery of the bilevel solvers (see module docstring).

    A subclass implements :meth:`step` and optionally :meth:`check_parameters`,
    :meth:`init_state`, :meth:`info` and :meth:`stall_reason`; its ``step``
    may end the run by setting ``self.stop_reason`` (status ``"stalled"``).
    Divergence (``docs/limits.md``): the run stops, keeps its last good
    theta and reports ``diverged = 1``.
    """

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

    def stall_reason(self):
        """Why a run that spent its budget is ``stalled`` (a str), or None.

        Asked once, when the cost reaches the budget, before the last
        evaluation (``docs/limits.md``).
        """
        return None

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
        """Report the current (mini-batch) upper-level loss for divergence checks.

        The first finite loss of the run is the reference of
        :data:`EXPLOSION_FACTOR`.
        """
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

    def get_next(self, stop_val):
        """Evaluate at every callback call: each call is one cost checkpoint."""
        return stop_val + 1

    def start(self):
        """Fresh state for a run: counted oracles, memory, theta0, then ``init_state``.

        :meth:`run` calls it once per run (benchopt may call ``run`` several
        times after one ``set_objective``); code that drives :meth:`step`
        itself calls it after ``set_objective``.
        """
        self._reset()
        self.init_state()

    def _reset(self):
        # drop the previous run's state first: it is as large as the data
        self.oracles = self.memory = None
        self.oracles = self.problem.make_oracles()
        self.memory = ImageMemory(self.oracles)
        self.theta = self.theta0.clone()
        self._theta_ok = self.theta.clone()
        self.n_outer = 0
        self.diverged = False
        self.diverged_by = None
        self.status = "ok"
        self.stop_reason = None
        self._loss_ref = None
        self._last_loss = float("nan")
        self._lip_ref = self.oracles.lipschitz(self.theta0)
        self._conv_ref = self.oracles.strong_convexity(self.theta0)
        self._capped_steps = 0
        self.generator = torch.Generator().manual_seed(self.seed)

    def _divergence_reason(self):
        """Why the current theta counts as diverged (a short str), or None.

        The rules and thresholds are those of ``docs/limits.md``; the cap
        rule reads ``self._capped_steps``, the number of steps in a row with
        an inner solve stopped at its iteration cap.
        """
        if not bool(torch.isfinite(self.theta).all()):
            return "theta not finite"
        lip = self.oracles.lipschitz(self.theta)
        if not math.isfinite(lip):
            return "Lipschitz bound not finite"
        loss = self._last_loss
        if self._loss_ref is not None and (
            not math.isfinite(loss) or loss > EXPLOSION_FACTOR * self._loss_ref
        ):
            return "loss exploded"
        if lip > LIPSCHITZ_FACTOR * self._lip_ref:
            return f"L(theta) > {LIPSCHITZ_FACTOR:g} L(theta0)"
        conv = self.oracles.strong_convexity(self.theta)
        if not conv * CONVEXITY_FACTOR >= self._conv_ref:
            return f"m(theta) < m(theta0) / {CONVEXITY_FACTOR:g}"
        if self._capped_steps >= CAP_HIT_STEPS:
            return f"inner solves at their cap in {CAP_HIT_STEPS} steps in a row"
        return None

    def _steps_to(self, target):
        """Outer steps until the cost reaches ``target`` or the run ends."""
        counters = self.oracles.counters
        while counters.cost < target:
            hits = self.oracles.cap_hits
            self.step()
            self.n_outer += 1
            capped = self.oracles.cap_hits > hits
            self._capped_steps = self._capped_steps + 1 if capped else 0
            reason = self._divergence_reason()
            if reason is not None:
                self.diverged, self.diverged_by = True, reason
                self.status = "diverged"
                self.theta = self._theta_ok.clone()
                warnings.warn(
                    f"{self.name}: diverged at step {self.n_outer} ({reason}); "
                    "the last good theta is kept",
                    RuntimeWarning,
                    stacklevel=2,
                )
                return
            self._theta_ok = self.theta.detach().clone()
            if self.stop_reason:
                self._mark_stalled()
                return

    def _mark_stalled(self):
        self.status = "stalled"
        warnings.warn(
            f"{self.name}: stopped at step {self.n_outer}: {self.stop_reason}",
            RuntimeWarning,
            stacklevel=3,
        )

    def run(self, callback):
        """benchopt's callback loop within the limits of ``docs/limits.md``."""
        self.start()
        deadline = benchopt_deadline(callback)
        targets = iter(self.checkpoints)
        longest_eval = 0.0
        try:
            while True:
                if (
                    deadline is not None
                    and self.status == "ok"
                    and self.oracles.counters.cost < self.budget
                    and time.time() + EVAL_RESERVE * longest_eval >= deadline
                ):
                    self.status = "timeout"  # this evaluation is the last
                if self.status in ("ok", "budget") and (
                    self.oracles.counters.cost >= self.budget
                ):
                    self.stop_reason = self.stall_reason()
                    if self.stop_reason:
                        self._mark_stalled()
                start = time.time()
                go_on = callback()
                longest_eval = max(longest_eval, time.time() - start)
                if not go_on or self.status != "ok":
                    break
                cost = self.oracles.counters.cost
                target = next((t for t in targets if t > cost), None)
                if target is None:
                    break
                if deadline is not None:
                    deadline_now = deadline - EVAL_RESERVE * longest_eval
                else:
                    deadline_now = None
                self.oracles.set_limits(cost_cap=self.budget, deadline=deadline_now)
                try:
                    self._steps_to(target)
                except LimitReached as limit:
                    # the interrupted step is discarded
                    self.theta = self._theta_ok.clone()
                    self.status = limit.kind
        finally:
            self.oracles.set_limits()

    def get_result(self):
        return dict(
            theta=self._theta_ok.detach().cpu(),
            n_outer=self.n_outer,
            diverged=int(self.diverged),
            status=self.status,
            info=self.info(),
            **{k: v for k, v in self.oracles.counters.as_dict().items() if k != "cost"},
        )
