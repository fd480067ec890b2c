"""MAID: method of adaptive inexact descent (full batch, deterministic).

Salehi, Mukherjee, Roberts, Ehrhardt, "An adaptively inexact first-order
method for bilevel optimization with application to hyperparameter learning"
(arXiv 2308.10098, SIAM J. Math. Data Sci.);
``docs/maths.md`` sections 4-5. The a-posteriori bounds and the constants
live in :mod:`benchmark_utils.maid_bounds`; the full-batch solves, the
accuracy floors and the iteration cap in :mod:`benchmark_utils.full_batch`.

One ``step()`` is one outer iteration k on ALL training images:

1. Descent test. Inexact hypergradient z at accuracy (eps, delta)
   (:func:`~benchmark_utils.hypergradient.inexact_hypergradient`: lower level
   to ||grad_x E_i|| <= eps, conjugate gradient to residual <= delta, both
   warm-started; a lower-level result still certified to eps is reused).
   With d = theta - P(theta - z) the projected direction (d = P z: the
   feasible set, zero-mean filters, is a linear subspace) and omega the
   a-posteriori bound on ||z - grad f||: while omega / ||d|| > 1 - eta, set
   eps <- nu eps, delta <- nu delta and recompute (then
   <grad f, d> >= eta ||d||^2: d is a certified descent direction).
   ``descent_test=False`` skips this loop (and the constants): the looser
   MAID of the ISGD paper's figures (arXiv 2412.12049).
2. Backtracking. For j = 0..M-1: alpha = alpha_k rho^j, theta' = P(theta -
   alpha z), lower level at theta' to accuracy eps; accept when

       [upper bound of f(theta')] - [lower bound of f(theta)]
           <= -alpha eta^2 ||d||^2,

   f(theta) in mean_i l_i(x~_i) -/+ mean_i(||grad l_i(x~_i)|| e_i + L_g e_i^2/2),
   e_i = ||grad_x E_i(x~_i)|| / m (a posteriori; <= eps / m).
3. Accepted: theta <- theta', alpha_{k+1} = rho_bar alpha, eps <- nu_bar eps,
   delta <- nu_bar delta. No trial accepted: eps <- nu eps, delta <- nu delta,
   and the next ``step()`` retries from the same theta with alpha_k (as the
   reference: "retry from theta").

Warm starts. Trial j = 0 starts from the accepted point's x~_i (kept in the
memory); trial j >= 1 from x~_i + rho (x'_i - x~_i), x'_i the rejected trial
j-1, the first-order prediction of x_i(theta - alpha_k rho^j d). A rejected
trial never writes to the memory, so the accepted point's x~_i, q_i (and
hence the bounds at theta, computed from their own certified gradient
norms) stay intact; any starting point is admissible because every bound
uses the gradient norm certified at the returned point. After an acceptance
the trial's x'_i (certified to eps) is the next round's x~_i: with eps grown
by nu_bar it already meets the tolerance and no lower-level work is repeated.

Constants (:func:`benchmark_utils.maid_bounds.estimate_constants`): L_g = 2/d
and m are exact; ||J||, L_H, L_J are estimated by Lanczos iterations on
central finite differences of counted oracles at the current (theta, x~, q),
on ``const_images`` images (a fixed random subset), at the first round and
every ``const_every`` rounds after (one estimate costs 6 ``const_iter``
``ll_grad`` + ``hvp`` and 3 ``const_iter`` ``jvp`` per image used). They are
local lower estimates times ``safety``; the module docstring of
``maid_bounds`` says how conservative they and omega are. Without the
descent test no constant is estimated.

Floors. eps is floored as in :mod:`benchmark_utils.full_batch` (and raised
with the floor when a solve stops at its cap); delta at 100 machine
epsilons times max_i ||grad l_i|| at the first solve. At the floor the
descent test is given up for that round (``certified = 0``) instead of
looping.

Stall. After ``MAX_REJECTED_ROUNDS`` = 10 consecutive rounds without an
accepted step, ``step()`` sets ``self.stop_reason = "no step accepted"`` (the
base loop then ends the run and reports it). Ten because a rejected round
has already tried M step sizes down to alpha_k rho^(M-1) and halves the
accuracies: ten rounds shrink eps and delta by 2^10 ~ 1e3, which takes the
default eps0 = 1e-2 below the float32 floor (about 1e-4 on the default
problem), so later rounds repeat the same trials at the same accuracy from
the same theta and cannot succeed where these failed; a round costs about
M + 1 full-batch solves, so the stall costs at most ten such rounds.

Budget. A step returns early (keeping theta) once the cost reaches the
budget; a solve that would pass it is cut by the oracles within one call on
the batch and the step is discarded (``docs/limits.md``).

Defaults: eta, rho, rho_bar, nu, nu_bar are the paper's reference values
(``docs/maths.md`` section 5); step_size, eps0, delta0 as found in
``docs/tuning.md``. Information along the curve (:meth:`Solver.info`):
accepted step, eps, delta, trials, descent-test tightenings, acceptance,
omega / ||d||, certification and the constants.
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


class Solver(FullBatchSolver):
    name = "MAID"
    #: consecutive rounds without an accepted step after which the run stalls
    MAX_REJECTED_ROUNDS = 10
    # step_size: tuned on the three default problems by the protocol of
    # docs/tuning.md (validation PSNR only; scripts/tune.py --defaults)
    parameters = {
        "step_size": [1000.0],
        "eps0": [1e-2],
        "delta0": [1e-4],
        "rho": [0.5],
        "rho_bar": [10 / 9],
        "nu": [0.5],
        "nu_bar": [1.05],
        "eta": [1e-4],
        "max_backtracks": [5],
        "descent_test": [True],
        "const_every": [5],
        "const_images": [4],
        "const_iter": [5],
        "safety": [1.0],
    }
    test_config = {"const_images": 2, "const_iter": 2, "max_backtracks": 3}

    def check_parameters(self):
        require_step_size(self)
        require_accuracy(self, "eps0")
        require_accuracy(self, "delta0")
        self.require_real("rho", low=0, high=1, low_open=True, high_open=True)
        self.require_real("rho_bar", low=1)
        self.require_real("nu", low=0, high=1, low_open=True, high_open=True)
        self.require_real("nu_bar", low=1)
        self.require_real("eta", low=0, high=1, low_open=True, high_open=True)
        self.require_int("max_backtracks", low=1)
        self.require_bool("descent_test")
        self.require_int("const_every", low=1)
        self.require_int("const_images", low=1)
        self.require_int("const_iter", low=1)
        self.require_real("safety", low=0, low_open=True)

    # -- state ----------------------------------------------------------------
    def init_state(self):
        super().init_state()
        o = self.oracles
        self.eps = float(self.eps0)
        self.delta = float(self.delta0)
        self.alpha = float(self.step_size)
        self.delta_floor = None  # set from ||grad l_i|| at the first solve
        n_const = min(int(self.const_images), o.n_images)
        perm = torch.randperm(o.n_images, generator=self.generator)
        self.const_idx = perm[:n_const].sort().values.to(self.device)
        self.constants = None
        self.rounds = 0
        self.n_rejected = 0  # consecutive rounds without an accepted step
        self.stop_reason = None
        self._lower = None  # certified lower-level result at self.theta
        # diagnostics of the last round
        self.last = {
            "step_size": float("nan"),
            "n_backtracks": 0,
            "accepted": 0,
            "omega_ratio": float("nan"),
            "n_tighten": 0,
            "certified": 0,
        }

    def _over_budget(self):
        return self.oracles.counters.cost >= self.budget

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
        return self.theta - self.oracles.project(self.theta - z)

    def _descent_test(self, hg):
        """Step 1: tighten (eps, delta) until omega / ||d|| <= 1 - eta."""
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

    def _backtrack(self, hg):
        """Step 2: the first trial that passes the decrease test, or None."""
        o, last = self.oracles, self.last
        z = hg.z
        d2 = float(self._direction(z).pow(2).sum())
        lip_g = o.ul_lipschitz
        m = o.strong_convexity(self.theta)
        f_low, _ = loss_bounds(hg.loss, hg.lower.grad_norm, hg.grad_loss_norm, m, lip_g)
        x_base = hg.lower.x
        x_trial = None
        for j in range(int(self.max_backtracks)):
            alpha = self.alpha * self.rho**j
            theta_t = o.project(self.theta - alpha * z)
            x0 = x_base if x_trial is None else x_base + self.rho * (x_trial - x_base)
            trial = self.solve(theta_t, x0, self.eps)
            loss_t, grad_l_t = o.ul_grad(trial.x, self.idx)
            _, f_up = loss_bounds(
                loss_t,
                trial.grad_norm,
                batch_norm(grad_l_t),
                o.strong_convexity(theta_t),
                lip_g,
            )
            last["n_backtracks"] = j + 1
            if math.isfinite(f_up) and f_up - f_low <= -alpha * self.eta**2 * d2:
                return alpha, theta_t, trial, loss_t
            x_trial = trial.x
            if self._over_budget():
                return None
        self._reject()
        return None

    def _reject(self):
        """Step 3, no trial accepted: tighten, retry from theta at the next step."""
        self._tighten()
        self.n_rejected += 1
        if self.n_rejected >= self.MAX_REJECTED_ROUNDS:
            self.stop_reason = "no step accepted"

    def _accept(self, alpha, theta_t, trial, loss_t):
        """Step 3, trial accepted: move, grow the step, loosen the accuracies."""
        self.theta = theta_t
        self.memory.set_x(self.idx, trial.x)
        self._lower = trial
        self.alpha = self.rho_bar * alpha
        self.eps *= self.nu_bar
        self.delta *= self.nu_bar
        self.n_rejected = 0
        self.last["accepted"] = 1
        self.last["step_size"] = alpha
        self.record_loss(loss_t.mean())

    # -- one outer iteration ------------------------------------------------------
    def step(self):
        last = self.last
        last.update(n_backtracks=0, accepted=0, n_tighten=0, certified=0)
        last["omega_ratio"] = float("nan")

        hg = self._hypergradient()
        self.record_loss(hg.loss.mean())
        if self.descent_test:
            hg = self._descent_test(hg)
        self.rounds += 1
        if self._over_budget():
            return
        accepted = self._backtrack(hg)
        if accepted is not None:
            self._accept(*accepted)

    def info(self):
        c = self.constants
        nan = float("nan")
        return {
            "step_size": self.last["step_size"],
            "accuracy": self.eps,
            "delta": self.delta,
            "n_backtracks": self.last["n_backtracks"],
            "n_tighten": self.last["n_tighten"],
            "accepted": self.last["accepted"],
            "omega_ratio": self.last["omega_ratio"],
            "certified": self.last["certified"],
            "jac_norm": c.jac_norm if c else nan,
            "lip_hess": c.lip_hess if c else nan,
            "lip_jac": c.lip_jac if c else nan,
        }
