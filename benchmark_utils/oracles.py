"""Counted per-image oracles of the bilevel problem (``docs/maths.md`` s. 1, 3).

:class:`CountedOracles` is the only door from a solver to the maths and the
only place where the cost counters change: every lower-level gradient,
Hessian-vector product, mixed product and upper-level gradient is counted per
image, so a solver cannot under-report what it spends. ``cost = ll_grad +
hvp`` (3.1) and ``work`` (3.2) are read from the counts. The limits of a run
(cost cap, deadline; ``docs/limits.md``) are enforced here: a counted call
that may not start raises :class:`LimitReached`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from .validation import check_mu
from .work import work_weights

COUNTER_NAMES = ("ll_grad", "hvp", "jvp", "ul_grad", "hess_build")


class LimitReached(Exception):
    """A counted call was refused because a limit of the run is reached.

    Parameters
    ----------
    kind : {"budget", "timeout"}
        ``"budget"``: a cost call would start with the cost at the cap;
        ``"timeout"``: a counted call would start after the deadline.
    cost : int
        The cost when the call was refused.
    """

    def __init__(self, kind, cost):
        super().__init__(f"{kind} limit reached at cost {cost}")
        self.kind = kind
        self.cost = cost


@dataclass
class Counters:
    """Oracle calls, each counted once per image (``docs/maths.md`` 3.1-3.3).

    ``ll_grad`` ... ``hess_build`` are the run's totals, ``per_image[name]``
    the calls per image (int64, (n_images,)), ``weights`` the work of one
    call by oracle (:mod:`benchmark_utils.work`), ``repriced`` the calls of a
    counter priced under another key (``{key: [counter, calls]}``: the
    per-image ``jvp``). ``cost`` and ``work`` are read from the counts.
    """

    n_images: int
    device: torch.device | str = "cpu"
    ll_grad: int = 0
    hvp: int = 0
    jvp: int = 0
    ul_grad: int = 0
    hess_build: int = 0
    weights: dict = field(default_factory=dict)
    per_image: dict = field(default_factory=dict)
    repriced: dict = field(default_factory=dict)

    def __post_init__(self):
        for name in COUNTER_NAMES:
            self.per_image[name] = torch.zeros(
                self.n_images, dtype=torch.int64, device=self.device
            )

    @property
    def cost(self):
        """The papers' x-axis: lower-level gradients plus Hessian-vector products."""
        return self.ll_grad + self.hvp

    def add(self, name, idx, priced_as=None):
        """Count one call of oracle ``name`` on each image in ``idx``.

        Its work is ``weights[priced_as or name]`` per image.
        """
        n = int(idx.numel())
        setattr(self, name, getattr(self, name) + n)
        ones = torch.ones_like(idx, dtype=torch.int64)
        self.per_image[name].index_add_(0, idx, ones)
        if priced_as is not None and priced_as != name:
            self.repriced.setdefault(priced_as, [name, 0])[1] += n

    @property
    def work(self):
        """Total work in gradient-equivalents (:mod:`benchmark_utils.work`)."""
        w = self.weights
        total = sum(w.get(name, 0.0) * getattr(self, name) for name in COUNTER_NAMES)
        for key, (name, calls) in self.repriced.items():
            total += (w.get(key, 0.0) - w.get(name, 0.0)) * calls
        return float(total)

    def as_dict(self):
        """Totals as plain numbers, plus ``cost`` and ``work``."""
        out = {name: getattr(self, name) for name in COUNTER_NAMES}
        out["cost"] = self.cost
        out["work"] = self.work
        return out


class _CountedHessian:
    """Hess_x E_i at fixed images, counting one ``hvp`` per image per product."""

    def __init__(self, oracles, reg_hessian, idx):
        self._oracles = oracles
        self._reg_hessian = reg_hessian
        self._idx = idx

    @property
    def oracles(self):
        """The :class:`CountedOracles` that count this operator's products."""
        return self._oracles

    @torch.no_grad()
    def __call__(self, v, rows=None):
        """Hess E_i(x_i) v_i for the images at positions ``rows`` (None: all)
        of the batch the operator was built on; ``v`` has one image per row."""
        idx = self._idx if rows is None else self._idx[rows]
        self._oracles.check_limits(cost_call=True)
        self._oracles.counters.add("hvp", idx)
        out = self._reg_hessian(v, rows)
        self._oracles._add_quadratic(out, v, idx)
        return out


class CountedOracles:
    """The bilevel problem on one image set, behind counted oracles.

    Parameters
    ----------
    regulariser : Regulariser
        The learnable convex regulariser R_theta.
    forward : ForwardOperator
        The measurement operator A (see :mod:`benchmark_utils.forward`).
    x_clean : torch.Tensor
        Clean images (n, C, H, W), the upper-level targets.
    y : torch.Tensor
        Measurements A x_i + noise, frozen.
    mu : float
        Weight of the strongly convex term mu/2 ||x||^2 (>= 0).
    """

    def __init__(self, regulariser, forward, x_clean, y, mu=0.0):
        self._reg = regulariser
        self.forward = forward
        self.mu = check_mu(mu, forward)
        self.x_clean = x_clean
        self.y = y
        self._aty = forward.A_adjoint(y)
        self._identity = bool(getattr(forward, "is_identity", False))
        self.n_images = x_clean.shape[0]
        self.image_shape = tuple(x_clean.shape[1:])
        self.n_pixels = int(x_clean[0].numel())
        #: work of one call per image, by oracle (:mod:`benchmark_utils.work`)
        self.work_weights = work_weights(regulariser, forward, self.image_shape)
        self.counters = Counters(
            self.n_images, device=x_clean.device, weights=self.work_weights
        )
        #: inner solves (lower level, conjugate gradient) stopped at their cap
        self.cap_hits = 0
        self.cost_cap = None
        self.deadline = None

    # -- information that runs no image work (not counted) ----------------
    @property
    def device(self):
        return self.x_clean.device

    @property
    def dtype(self):
        return self.x_clean.dtype

    def init_theta(self, seed):
        """Initial parameters drawn from ``seed``, feasible."""
        theta = self._reg.init_theta(seed, dtype=self.dtype, device=self.device)
        return self._reg.project(theta)

    def project(self, theta):
        """Projection of theta onto the regulariser's feasible set."""
        return self._reg.project(theta)

    def unpack(self, theta):
        """Named views of theta (for plots and diagnostics)."""
        return self._reg.unpack(theta)

    def lipschitz(self, theta):
        """Upper bound L on ||Hess_x E_i|| for all x and i (filters only).

        L = ||A||^2 + mu + L_R(theta) (``docs/maths.md`` section 2).
        """
        return self.forward.norm_sq + self.mu + self._reg.lipschitz(theta)

    def strong_convexity(self, theta=None):
        """Strong-convexity modulus m = lambda_min(A^T A) + mu + conv(R)."""
        conv = 0.0 if theta is None else self._reg.convexity(theta)
        return self.forward.lambda_min + self.mu + conv

    @property
    def ul_lipschitz(self):
        """L_g, the Lipschitz constant of grad l_i = 2 (x - x_i) / d."""
        return 2.0 / self.n_pixels

    def initial_x(self, idx):
        """Default lower-level starting point: A^T y_i (y_i for denoising)."""
        return self._aty[idx]  # advanced indexing already copies

    # -- limits -------------------------------------------------------------
    def set_limits(self, cost_cap=None, deadline=None):
        """Refuse calls past a cost cap and a deadline (None: no limit).

        A cost call (``ll_grad``, ``hvp``) starting at ``cost >= cost_cap``
        raises ``LimitReached("budget")`` (one that starts below runs in
        full); any counted call starting at ``time.time() >= deadline``
        raises ``LimitReached("timeout")``.
        """
        self.cost_cap = cost_cap
        self.deadline = deadline

    def check_limits(self, cost_call):
        """Raise :class:`LimitReached` if a call may not start now."""
        if (
            cost_call
            and self.cost_cap is not None
            and self.counters.cost >= self.cost_cap
        ):
            raise LimitReached("budget", self.counters.cost)
        if self.deadline is not None and time.time() >= self.deadline:
            raise LimitReached("timeout", self.counters.cost)

    def record_cap_hit(self):
        """Note one inner solve that stopped at its iteration cap."""
        self.cap_hits += 1

    # -- counted oracles --------------------------------------------------
    @torch.no_grad()
    def ll_grad(self, theta, x, idx):
        """grad_x E_i(x_i; theta) for each image; counts ``ll_grad`` per image.

        Parameters
        ----------
        theta : torch.Tensor
            Flat parameters.
        x : torch.Tensor
            Points (B, C, H, W), one per image index.
        idx : torch.Tensor of int64
            Image indices (B,) into this image set.
        """
        self.check_limits(cost_call=True)
        self.counters.add("ll_grad", idx)
        g = self._reg.grad(x, theta)
        g.sub_(self._aty[idx])
        self._add_quadratic(g, x, idx)
        return g

    def _add_quadratic(self, out, v, idx):
        """out += (A_i^T A_i + mu I) v_i, in place (A = I: one fused pass)."""
        if self._identity:
            out.add_(v, alpha=1.0 + self.mu)
        elif self.forward.mask is not None:  # inpainting: out += m_i v_i
            out.addcmul_(v, self.forward.mask[idx])
            if self.mu:
                out.add_(v, alpha=self.mu)
        else:
            out.add_(self.forward.AtA(v, idx))
            if self.mu:
                out.add_(v, alpha=self.mu)

    @torch.no_grad()
    def hessian(self, theta, x, idx):
        """Hess_x E_i(x_i; theta) as an operator; each product counts ``hvp``.

        Building the operator caches the curvature at ``x``: one
        ``hess_build`` per image (work, not cost); each application to a
        vector counts one ``hvp`` per image.
        """
        self.check_limits(cost_call=False)
        self.counters.add("hess_build", idx)
        return _CountedHessian(self, self._reg.hessian(x, theta), idx)

    def hvp(self, theta, x, v, idx):
        """Hess_x E_i(x_i; theta) v_i; counts one ``hvp`` per image."""
        return self.hessian(theta, x, idx)(v)

    def jvp(self, theta, x, q, idx, per_image=False):
        """Mixed product grad_theta <grad_x E_i(x_i; theta), q_i>; counts ``jvp``.

        Only R depends on theta, so this is the regulariser's mixed product.
        Returns the sum over the batch (P,), or (B, P) with ``per_image``.
        """
        self.check_limits(cost_call=False)
        self.counters.add("jvp", idx, "jvp_per_image" if per_image else "jvp")
        return self._reg.mixed(x, theta, q, per_image=per_image)

    def ul_grad(self, x, idx):
        """Upper-level losses l_i(x_i) (B,) and gradients; counts ``ul_grad``."""
        self.check_limits(cost_call=False)
        self.counters.add("ul_grad", idx)
        diff = x - self.x_clean[idx]
        loss = diff.flatten(1).pow(2).sum(dim=1) / self.n_pixels
        return loss, diff * (2.0 / self.n_pixels)
