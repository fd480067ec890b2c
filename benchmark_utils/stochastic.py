"""Base of the doubly-stochastic baselines: stocBiO, AmIGO, SOBA, TTSA, BSA.

``docs/maths.md`` section 5.4: the step template (a mini-batch of images,
per-image warm-started x_i and v_i, a fixed number of inner iterations),
the two step conventions (an absolute outer step, or the anchor's inner
step and inner-to-outer ratio) and the random-length Neumann estimate.
"""

from __future__ import annotations

import torch

from .bilevel_solver import BilevelSolver
from .hypergradient import lower_level_steps
from .sampling import EpochSampler, decay
from .solver_ranges import (
    INNER_STEP_RANGE,
    OUTER_RATIO_RANGE,
    require_positive_in,
    require_step_size,
)


def stochastic_parameters(step_size, step_power=0.0, batch_size=4, **own):
    """benchopt ``parameters`` of a doubly-stochastic solver, ``{name: [default]}``.

    ``step_size``, ``step_power`` and ``batch_size`` (B, 4 as ISGD) are the
    shared parameters; ``own`` the solver's others, with their defaults.
    """
    shared = {"step_size": step_size, "step_power": step_power}
    return {k: [v] for k, v in {**shared, **own, "batch_size": batch_size}.items()}


def draw_neumann_lengths(generator, n, n_max):
    """Random truncation lengths p_i, uniform on {0, ..., n_max - 1}, one per image."""
    return torch.randint(0, int(n_max), (int(n),), generator=generator)


def random_neumann(hessian, b, lengths, n_max, eta):
    """Unbiased random-length Neumann estimate n_max eta (I - eta H_i)^{p_i} b_i.

    Image i costs p_i = ``lengths[i]`` ``hvp`` (``docs/maths.md`` section 5.4).
    """
    lengths = lengths.to(b.device)
    p = b.clone()
    for j in range(int(lengths.max()) if lengths.numel() else 0):
        rows = (lengths > j).nonzero().flatten()
        p[rows] = p[rows] - eta * hessian(p[rows], rows)
    return (n_max * eta) * p


class DoublyStochasticSolver(BilevelSolver):
    """Step template of the doubly-stochastic baselines (``docs/maths.md`` 5.4).

    A subclass sets ``parameters = stochastic_parameters(...)``, implements
    :meth:`adjoint` and may override :meth:`lower_level`, :meth:`inner_steps`,
    :meth:`inner_step_size` or :meth:`outer_step_size`. Every count ``n_*``
    is checked here (>= 1, or ``min_counts[name]``). ``alpha`` and
    ``inner_step`` are the outer and inner steps of the last step.
    """

    #: smallest allowed value of an iteration count ``n_*`` where it is not 1
    min_counts = {}

    def check_parameters(self):
        self.require_int("batch_size", low=1, high=self.problem.n_images)
        self.check_steps()
        self.require_real("step_power", low=0, high=1)
        for name in self.parameters:
            if name.startswith("n_"):
                self.require_int(name, low=self.min_counts.get(name, 1))

    def check_steps(self):
        """``step_size`` is the outer step alpha_0."""
        require_step_size(self)

    def init_state(self):
        self.sampler = EpochSampler(
            self.problem.n_images, self.batch_size, self.seed, self.device
        )
        self.alpha = float("nan")
        self.inner_step = float("nan")

    # -- the template ---------------------------------------------------------
    def step(self):
        idx = self.sampler.next()
        x, v, loss = self.hypergradient_pieces(idx)
        self.record_loss(loss.mean())
        self.theta_step(x, v, idx)

    def hypergradient_pieces(self, idx):
        """x_i, v_i and l_i(x_i) of the images ``idx`` (z = -mean_i J_i(x_i)^T v_i)."""
        eta = self.eta()
        x = self.lower_level(idx, eta)
        loss, grad_l = self.oracles.ul_grad(x, idx)
        hessian = self.oracles.hessian(self.theta, x, idx)
        return x, self.adjoint(hessian, grad_l, idx, eta), loss

    # -- hooks ----------------------------------------------------------------
    def inner_steps(self):
        """K, lower-level gradient steps per visit: the parameter ``n_inner``."""
        return self.n_inner

    def inner_step_size(self, eta):
        """Lower-level step; eta = 1/L by default."""
        return eta

    def lower_level(self, idx, eta):
        """K warm-started gradient steps on each E_i (K ``ll_grad`` per image)."""
        self.inner_step = self.inner_step_size(eta)
        x0 = self.memory.get_x(idx)
        x = lower_level_steps(
            self.oracles, self.theta, x0, idx, self.inner_steps(), self.inner_step
        )
        self.memory.set_x(idx, x)
        return x

    def adjoint(self, hessian, grad_l, idx, eta):
        """v_i approximating H_i^{-1} grad l_i for the images ``idx``."""
        raise NotImplementedError

    def outer_step_size(self):
        """alpha_k = step_size / (k+1)^step_power, k = steps done."""
        return decay(self.n_outer, self.step_size, self.step_power)

    # -- helpers --------------------------------------------------------------
    def eta(self):
        """1/L at the current theta (filters only, not counted)."""
        return 1.0 / self.oracles.lipschitz(self.theta)

    def theta_step(self, x, v, idx):
        """theta <- P(theta - alpha_k z), z = -mean_i J_i(x_i)^T v_i (B ``jvp``)."""
        z = -self.oracles.jvp(self.theta, x, v, idx) / idx.numel()
        self.alpha = self.outer_step_size()
        self.theta = self.oracles.project(self.theta - self.alpha * z)

    def info(self):
        return {"step_size": self.alpha, "inner_step": self.inner_step}


class RatioStepSolver(DoublyStochasticSolver):
    """SOBA and AmIGO: the steps of their anchor, benchopt's benchmark_bilevel.

    Inner step (x_i and v_i) rho_k = step_size / L(theta_k) / (k+1)^step_power,
    outer step gamma_k = rho_k / outer_ratio (``docs/maths.md`` 5.4).
    """

    def check_steps(self):
        low, high = INNER_STEP_RANGE
        self.require_real("step_size", low, high, low_open=True, high_open=True)
        require_positive_in(self, "outer_ratio", OUTER_RATIO_RANGE)

    def inner_step_size(self, eta):
        return decay(self.n_outer, self.step_size * eta, self.step_power)

    def outer_step_size(self):
        return self.inner_step / self.outer_ratio


class RandomNeumannSolver(DoublyStochasticSolver):
    """TTSA and BSA: the random-length Neumann series (N = ``n_neumann``)."""

    def adjoint(self, hessian, grad_l, idx, eta):
        lengths = draw_neumann_lengths(self.generator, idx.numel(), self.n_neumann)
        return random_neumann(hessian, grad_l, lengths, self.n_neumann, eta)
