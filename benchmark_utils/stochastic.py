"""Base of the doubly-stochastic baselines (``docs/maths.md`` section 5).

stocBiO, AmIGO, SOBA, TTSA and BSA sample the upper level (a mini-batch of
images) AND spend a fixed number of inner iterations per step instead of
controlling an accuracy. In the papers the lower-level variable y is one
vector shared by all samples; here every image i has its own lower-level
problem E_i, so each method keeps, per image, its lower-level iterate x_i and
(where used) its linear-system iterate v_i in an
:class:`~benchmark_utils.memory.ImageMemory` (``.x`` and ``.q``). Only the
images of the current mini-batch move; the others keep their last iterate
until they are sampled again (the per-sample adaptation of a shared y).

One step (:meth:`DoublyStochasticSolver.step`) is the same template for the
five methods; they differ only in its two hooks:

1. draw the batch from :class:`~benchmark_utils.sampling.EpochSampler`
   (shuffled epochs seeded by ``self.seed``, as ISGD);
2. :meth:`~DoublyStochasticSolver.lower_level` (hook): the point x_i at which
   the hypergradient is taken; by default K = :meth:`inner_steps` warm-started
   gradient steps of size ``inner_step_size(eta)``, eta = 1/L with
   L = :meth:`CountedOracles.lipschitz` at the current theta;
3. one ``ul_grad`` per image: l_i(x_i) and grad l_i(x_i);
4. :meth:`~DoublyStochasticSolver.adjoint` (hook): v_i approximating
   +H_i^{-1} grad l_i(x_i) (Neumann series, linear-system steps, ...);
5. theta <- P(theta - alpha_k z), z = -1/B sum_i J_i(x_i)^T v_i (one ``jvp``
   per image), alpha_k = step_size / (k+1)^step_power, P the regulariser's
   projection.

Random choices other than the batch (Neumann lengths) use ``self.generator``.
How the defaults of each solver were chosen is in ``docs/tuning.md``.
"""

from __future__ import annotations

import torch

from .bilevel_solver import BilevelSolver
from .hypergradient import lower_level_steps
from .sampling import EpochSampler, decay
from .solver_ranges import require_step_size


def stochastic_parameters(step_size, step_power=0.0, batch_size=4, **own):
    """benchopt ``parameters`` of a doubly-stochastic solver (one default each).

    Parameters
    ----------
    step_size : float
        Default alpha_0 of the outer step.
    step_power : float
        Default decay power of alpha_k = alpha_0 / (k+1)^step_power.
    batch_size : int
        Default mini-batch size B (4, as ISGD).
    **own
        The solver's own parameters and their defaults.

    Returns
    -------
    dict
        ``{name: [default]}``, the shared parameters first.
    """
    shared = {"step_size": step_size, "step_power": step_power}
    return {k: [v] for k, v in {**shared, **own, "batch_size": batch_size}.items()}


def draw_neumann_lengths(generator, n, n_max):
    """Random truncation lengths p_i, uniform on {0, ..., n_max - 1}, shape (n,).

    Ghadimi and Wang (2018) and Hong et al. (2023) draw one such p per
    estimate; here one per image of the batch (independent estimates,
    averaged over the batch).
    """
    return torch.randint(0, int(n_max), (int(n),), generator=generator)


def random_neumann(hessian, b, lengths, n_max, eta):
    """Unbiased truncated-Neumann estimate v_i = n_max eta (I - eta H_i)^{p_i} b_i.

    With p_i uniform on {0, ..., n_max - 1},
    E[v_i] = eta sum_{j < n_max} (I - eta H_i)^j b_i, the n_max-term Neumann
    approximation of H_i^{-1} b_i (Ghadimi and Wang, 2018;
    ``docs/maths.md`` section 5).

    Parameters
    ----------
    hessian : callable
        Counted operator ``hessian(v, rows)`` of the batch.
    b : torch.Tensor
        Right-hand sides (B, C, H, W).
    lengths : torch.Tensor of int64
        p_i for each image (B,); image i costs exactly p_i ``hvp``.
    n_max : int
        Upper end N of the length distribution (scales the estimate).
    eta : float
        Step of the series, 0 < eta <= 1/L.

    Returns
    -------
    torch.Tensor
    """
    lengths = lengths.to(b.device)
    p = b.clone()
    for j in range(int(lengths.max()) if lengths.numel() else 0):
        rows = (lengths > j).nonzero().flatten()
        p[rows] = p[rows] - eta * hessian(p[rows], rows)
    return (n_max * eta) * p


class DoublyStochasticSolver(BilevelSolver):
    """Step template of the doubly-stochastic baselines (see module docstring).

    A subclass sets ``parameters = stochastic_parameters(...)``, implements
    :meth:`adjoint`, and may override :meth:`lower_level`, :meth:`inner_steps`
    or :meth:`inner_step_size`; its iteration counts ``n_*`` are checked
    here, and it extends :meth:`check_parameters` with its other parameters.
    (A class attribute named like a parameter would shadow the parameter:
    benchopt sets only the attributes an instance lacks.)

    Attributes
    ----------
    alpha : float
        Outer step alpha_k of the last step (reported by :meth:`info`).
    inner_step : float
        Lower-level step of the last step (reported by :meth:`info`).
    """

    #: smallest allowed value of an iteration count ``n_*`` where it is not 1
    min_counts = {}

    def check_parameters(self):
        """Validate the shared parameters and every iteration count ``n_*``.

        A count is an integer >= 1, or >= ``min_counts[name]``.
        """
        self.require_int("batch_size", low=1, high=self.problem.n_images)
        require_step_size(self)
        self.require_real("step_power", low=0, high=1)
        for name in self.parameters:
            if name.startswith("n_"):
                self.require_int(name, low=self.min_counts.get(name, 1))

    def init_state(self):
        self.sampler = EpochSampler(
            self.problem.n_images, self.batch_size, self.seed, self.device
        )
        self.alpha = self.step_size
        self.inner_step = float("nan")

    # -- the template ---------------------------------------------------------
    def step(self):
        idx = self.sampler.next()
        x, v, loss = self.hypergradient_pieces(idx)
        self.record_loss(loss.mean())
        self.theta_step(x, v, idx)

    def hypergradient_pieces(self, idx):
        """x_i, v_i and the losses l_i(x_i) of the images ``idx`` (steps 2-4).

        The hypergradient estimate is z = -1/B sum_i J_i(x_i)^T v_i.
        """
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
        """K warm-started gradient steps on E_i; the new x_i are stored.

        Costs K = :meth:`inner_steps` ``ll_grad`` per image.
        """
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

    # -- helpers --------------------------------------------------------------
    def outer_step_size(self):
        """alpha_k = step_size / (k+1)^step_power, k = steps done."""
        self.alpha = decay(self.n_outer, self.step_size, self.step_power)
        return self.alpha

    def eta(self):
        """1/L at the current theta (filters only, not counted)."""
        return 1.0 / self.oracles.lipschitz(self.theta)

    def theta_step(self, x, v, idx):
        """theta <- P(theta - alpha_k z), z = -1/B sum_i J_i(x_i)^T v_i.

        One ``jvp`` per image. Returns z.
        """
        z = -self.oracles.jvp(self.theta, x, v, idx) / idx.numel()
        alpha = self.outer_step_size()
        self.theta = self.oracles.project(self.theta - alpha * z)
        return z

    def info(self):
        return {"step_size": self.alpha, "inner_step": self.inner_step}


class RandomNeumannSolver(DoublyStochasticSolver):
    """TTSA and BSA: adjoint by the random-length Neumann series.

    Per image an independent length p_i uniform on {0, ..., N-1}
    (N = ``n_neumann``, drawn from ``self.generator``) and
    v_i = N eta (I - eta H_i)^{p_i} grad l_i(x_i) (:func:`random_neumann`),
    an unbiased estimate of the N-term Neumann series; p_i ``hvp`` per image.
    """

    def adjoint(self, hessian, grad_l, idx, eta):
        lengths = draw_neumann_lengths(self.generator, idx.numel(), self.n_neumann)
        return random_neumann(hessian, grad_l, lengths, self.n_neumann, eta)
