"""MAID: method of adaptive inexact descent (full batch, deterministic).

Salehi, Mukherjee, Roberts, Ehrhardt, "An adaptively inexact first-order
method for bilevel optimization with application to hyperparameter learning"
(arXiv 2308.10098). ``docs/maths.md`` section 5.2 gives the iteration and
its two acceptance rules (``acceptance``): ``"decrease"``, the MAID of the
ISGD paper's comparison code (arXiv 2412.12049), and ``"certified"``, the
MAID paper's descent test and certified backtracking. Bounds and constants:
:mod:`benchmark_utils.maid_bounds`; solves and accuracy floors:
:mod:`benchmark_utils.full_batch`. A run that accepts no step is ``stalled``
(``docs/limits.md``); :meth:`Solver.info` counts accepted and rejected trial
steps since the start of the run.
"""

import math

import torch

from benchmark_utils.full_batch import FullBatchSolver
from benchmark_utils.lower_level import batch_norm
from benchmark_utils.maid_bounds import (
    estimate_constants,
    hypergradient_error_bound,
    loss_bounds,
)
from benchmark_utils.solver_ranges import require_accuracy, require_step_size

#: cap on descent-test tightenings in one round
MAX_TIGHTEN = 40
#: the acceptance rules of docs/maths.md section 5.2
ACCEPTANCE = ("decrease", "certified")


class Solver(FullBatchSolver):
    name = "MAID"
    #: consecutive rounds without an accepted step after which the run stalls
    MAX_REJECTED_ROUNDS = 10
    # step_size: tuned on the three default problems by the protocol of
    # docs/tuning.md (validation loss only; scripts/tune.py --defaults)
    parameters = {
        "step_size": [1000.0],
        "acceptance": ["decrease"],
        "eps0": [1e-2],
        "delta0": [1e-4],
        "rho": [0.5],
        "rho_bar": [10 / 9],
        "nu": [0.5],
        "nu_bar": [1.05],
        "eta": [1e-4],
        "max_backtracks": [5],
        "const_every": [5],
        "const_images": [4],
        "const_iter": [5],
        "safety": [1.0],
    }
    test_config = {"const_images": 2, "const_iter": 2, "max_backtracks": 3}

    def check_parameters(self):
        require_step_size(self)
        self.require_choice("acceptance", ACCEPTANCE)
        require_accuracy(self, "eps0")
        require_accuracy(self, "delta0")
        self.require_real("rho", low=0, high=1, low_open=True, high_open=True)
        self.require_real("rho_bar", low=1)
        self.require_real("nu", low=0, high=1, low_open=True, high_open=True)
        self.require_real("nu_bar", low=1)
        self.require_real("eta", low=0, high=1, low_open=True, high_open=True)
        self.require_int("max_backtracks", low=1)
        self.require_int("const_every", low=1)
        self.require_int("const_images", low=1)
        self.require_int("const_iter", low=1)
        self.require_real("safety", low=0, low_open=True)

    # -- state ----------------------------------------------------------------
    def init_state(self):
        super().init_state()
        o = self.oracles
        self.certify = self.acceptance == "certified"
        self.eps = float(self.eps0)
        self.delta = float(self.delta0)
        self.alpha = float(self.step_size)
        self.delta_floor = None  # set from ||grad l_i|| at the first solve
        n_const = min(int(self.const_images), o.n_images)
        perm = torch.randperm(o.n_images, generator=self.generator)
        self.const_idx = perm[:n_const].sort().values.to(self.device)
        self.constants = None
        self.rounds = 0
        self.rejected_rounds = 0  # consecutive rounds without an accepted step
        self.n_accepted = self.n_rejected = 0  # trial steps, whole run
        self._lower = None  # certified lower-level result at self.theta
        self.last = {}  # diagnostics of the last round

    def _over_budget(self):
        return self.oracles.counters.cost >= self.budget

    def stall_reason(self):
        return None if self.n_accepted else "no step accepted"

    # -- pieces -----------------------------------------------------------------
    def raise_floor(self, lower):
        super().raise_floor(lower)
        if lower.hit_cap:
            self.eps = max(self.eps, self.eps_floor)

    def _hypergradient(self):
        """z at (eps, delta) on all images, reusing a still-certified x~."""
        lower = self._lower
        if lower is not None and bool((lower.grad_norm > self.eps).any()):
            lower = None
        hg = self.hypergradient(self.eps, self.delta, lower=lower)
        self._lower = hg.lower
        if self.delta_floor is None:
            self.delta_floor = self.tiny * float(hg.grad_loss_norm.max())
        return hg

    def _tighten(self):
        self.eps = max(self.nu * self.eps, self.eps_floor)
        self.delta = max(self.nu * self.delta, self.delta_floor)

    def _estimate_constants(self, hg):
        pos = self.const_idx
        self.constants = estimate_constants(
            self.oracles,
            self.theta,
            hg.lower.x[pos],
            hg.adjoint.q[pos],
            self.idx[pos],
            n_iter=int(self.const_iter),
            seed=self.seed + self.rounds,
            safety=self.safety,
        )

    def omega(self, hg):
        """A-posteriori bound on ||z - grad f|| for a hypergradient ``hg``."""
        o = self.oracles
        return hypergradient_error_bound(
            hg.lower.grad_norm,
            hg.grad_loss_norm,
            hg.adjoint.res_norm,
            o.strong_convexity(self.theta),
            o.ul_lipschitz,
            self.constants,
        )

    def _direction(self, z):
        """d = theta - P(theta - z), the projected direction of (5.3)-(5.4)."""
        return self.theta - self.oracles.project(self.theta - z)

    def _descent_test(self, hg):
        """Step 1 (certified): tighten (eps, delta) until omega / ||d|| <= 1 - eta."""
        last = self.last
        if self.constants is None or self.rounds % int(self.const_every) == 0:
            self._estimate_constants(hg)
        while True:
            d_norm = float(self._direction(hg.z).norm())
            ratio = self.omega(hg) / max(d_norm, 1e-300)
            last["omega_ratio"] = ratio
            if ratio <= 1 - self.eta:
                last["certified"] = 1
                return hg
            at_floor = self.eps <= self.eps_floor and self.delta <= self.delta_floor
            if at_floor or last["n_tighten"] >= MAX_TIGHTEN or self._over_budget():
                return hg
            self._tighten()
            last["n_tighten"] += 1
            hg = self._hypergradient()

    def _bracket(self, theta, loss, lower, grad_l_norm):
        """Certified bracket (4.7) of f(theta) from a lower-level result."""
        o = self.oracles
        m = o.strong_convexity(theta)
        return loss_bounds(loss, lower.grad_norm, grad_l_norm, m, o.ul_lipschitz)

    def _backtrack(self, hg):
        """Step 2: the first trial that passes the acceptance test, or None.

        The test compares ``new - ref <= -alpha eta^2 ||d||^2``: with
        ``"decrease"`` new and ref are the inexact losses at theta' and
        theta; with ``"certified"`` the upper bound at theta' and the lower
        bound at theta (``docs/maths.md`` (5.4)).
        """
        o, last = self.oracles, self.last
        z = hg.z
        margin = self.eta**2 * float(self._direction(z).pow(2).sum())
        if self.certify:
            ref, _ = self._bracket(self.theta, hg.loss, hg.lower, hg.grad_loss_norm)
        else:
            ref = float(hg.loss.mean())
        x_base = hg.lower.x
        x_trial = None
        for j in range(int(self.max_backtracks)):
            alpha = self.alpha * self.rho**j
            theta_t = o.project(self.theta - alpha * z)
            x0 = x_base if x_trial is None else x_base + self.rho * (x_trial - x_base)
            trial = self.solve(theta_t, x0, self.eps)
            loss_t, grad_l_t = o.ul_grad(trial.x, self.idx)
            if self.certify:
                _, new = self._bracket(theta_t, loss_t, trial, batch_norm(grad_l_t))
            else:
                new = float(loss_t.mean())
            last["n_backtracks"] = j + 1
            if math.isfinite(new) and new - ref <= -alpha * margin:
                return alpha, theta_t, trial, loss_t
            self.n_rejected += 1
            x_trial = trial.x
            if self._over_budget():
                return None
        self._reject()
        return None

    def _reject(self):
        """Step 3, no trial accepted: tighten, retry from theta at the next step."""
        self._tighten()
        self.rejected_rounds += 1
        if self.rejected_rounds >= self.MAX_REJECTED_ROUNDS:
            self.stop_reason = "no step accepted"

    def _accept(self, alpha, theta_t, trial, loss_t):
        """Step 3, trial accepted: move, grow the step, loosen the accuracies."""
        self.theta = theta_t
        self.memory.set_x(self.idx, trial.x)
        self._lower = trial
        self.alpha = self.rho_bar * alpha
        self.eps *= self.nu_bar
        self.delta *= self.nu_bar
        self.rejected_rounds = 0
        self.n_accepted += 1
        self.last["step_size"] = alpha
        self.record_loss(loss_t.mean())

    # -- one outer iteration ------------------------------------------------------
    def step(self):
        step_size = self.last.get("step_size", math.nan)
        self.last = dict(
            step_size=step_size,
            n_backtracks=0,
            n_tighten=0,
            certified=0,
            omega_ratio=math.nan,
        )
        hg = self._hypergradient()
        self.record_loss(hg.loss.mean())
        if self.certify:
            hg = self._descent_test(hg)
        self.rounds += 1
        if self._over_budget():
            return
        accepted = self._backtrack(hg)
        if accepted is not None:
            self._accept(*accepted)

    def info(self):
        c, last, nan = self.constants, self.last, math.nan
        return {
            "step_size": last.get("step_size", nan),
            "accuracy": self.eps,
            "delta": self.delta,
            "n_backtracks": last.get("n_backtracks", 0),
            "n_tighten": last.get("n_tighten", 0),
            "n_accepted": self.n_accepted,
            "n_rejected": self.n_rejected,
            "omega_ratio": last.get("omega_ratio", nan),
            "certified": last.get("certified", 0),
            "jac_norm": c.jac_norm if c else nan,
            "lip_hess": c.lip_hess if c else nan,
            "lip_jac": c.lip_jac if c else nan,
        }
