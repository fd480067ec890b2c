"""Shared pieces of the doubly-stochastic baselines (``ALGORITHMS.md`` s. 5).

stocBiO, AmIGO, SOBA, TTSA and BSA sample the upper level (a mini-batch of
images) AND spend a fixed number of inner iterations per step instead of
controlling an accuracy. In the papers the lower-level variable y is one
vector shared by all samples; here every image i has its own lower-level
problem E_i, so each method keeps, per image, its lower-level iterate x_i and
(where used) its linear-system iterate v_i in an
:class:`~benchmark_utils.memory.ImageMemory` (``.x`` and ``.q``). Only the
images of the current mini-batch move; the others keep their last iterate
until they are sampled again (the per-sample adaptation of a shared y).

Conventions shared by the five solvers:

- the batch comes from :class:`~benchmark_utils.sampling.EpochSampler`
  (shuffled epochs, seeded by ``self.seed``), like ISGD;
- lower-level and linear-system steps use eta = 1/L with
  L = :meth:`CountedOracles.lipschitz` at the current theta (the bound every
  solver of the benchmark uses), possibly times a decaying factor;
- v_i approximates +H_i^{-1} grad l_i, so the hypergradient is
  z = -1/B sum_i J_i^T v_i (one ``jvp`` per image) and theta moves to
  P(theta - alpha_k z), P the regulariser's projection;
- random choices other than the batch (Neumann lengths) use ``self.generator``.

Default parameters were chosen by step-size sweeps on the default denoising
problem at cost 15000 (patches, noise and theta0 drawn from seed 0; the
PSNRs quoted in the solvers' docstrings are on that instance), then checked
around the chosen values on the instance that ``benchopt run`` builds with
its default seed, where every default is within 0.3 dB of the best value in
that neighbourhood.
"""

from __future__ import annotations

import torch

from .bilevel_solver import BilevelSolver
from .sampling import EpochSampler, decay


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
    approximation of H_i^{-1} b_i (Ghadimi and Wang, 2018).

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
    """Base of the doubly-stochastic baselines (see module docstring).

    Subclasses declare ``parameters`` with at least ``batch_size`` and
    ``step_size`` (alpha_0) and ``step_power`` (alpha_k = alpha_0 /
    (k+1)^step_power), call :meth:`check_common` from ``check_parameters``
    and implement :meth:`step` with the helpers below.
    """

    def check_common(self):
        """Validate ``batch_size``, ``step_size`` and ``step_power``."""
        self.require_int("batch_size", low=1, high=self.problem.n_images)
        self.require_real("step_size", low=0, low_open=True)
        self.require_real("step_power", low=0, high=1)

    def init_state(self):
        self.sampler = EpochSampler(
            self.problem.n_images, self.batch_size, self.seed, self.device
        )
        self.alpha = self.step_size
        self.inner_step = float("nan")
        #: drawn Neumann lengths, one (B,) tensor per step (random-length methods)
        self.neumann_lengths = []

    # -- helpers ------------------------------------------------------------
    def outer_step_size(self):
        """alpha_k = step_size / (k+1)^step_power, k = steps done."""
        self.alpha = decay(self.n_outer, self.step_size, self.step_power)
        return self.alpha

    def eta(self):
        """1/L at the current theta (free)."""
        return 1.0 / self.oracles.lipschitz(self.theta)

    def draw_lengths(self, n, n_max):
        """Neumann lengths from ``self.generator``; kept in ``neumann_lengths``."""
        lengths = draw_neumann_lengths(self.generator, n, n_max)
        self.neumann_lengths.append(lengths)
        return lengths

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
