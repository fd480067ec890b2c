"""Interface shared by every learnable convex regulariser R_theta(x).

See ``ALGORITHMS.md`` section 2. Parameters theta are one flat 1-D tensor so
that solvers (SGD, Adam, line searches, norms) never need to know the model;
each regulariser splits it into named views with :meth:`Regulariser.unpack`.
"""

from __future__ import annotations

import torch


class HessianOperator:
    """Hessian of R at a fixed batch of points, with its curvature cached.

    Conjugate gradient applies the same Hessian many times; caching the
    curvature at x makes each product cost one convolution pair.

    Parameters
    ----------
    apply : callable
        ``apply(v, rows)`` returns Hess R(x[rows]) v for a batch ``v`` whose
        images correspond to the rows ``rows`` (``None`` for all rows).
    """

    def __init__(self, apply):
        self._apply = apply

    def __call__(self, v, rows=None):
        return self._apply(v, rows)


class Regulariser:
    """A convex regulariser R_theta(x) with learnable flat parameters theta.

    Subclasses implement :meth:`init_theta`, :meth:`unpack`, :meth:`value`,
    :meth:`grad`, :meth:`hessian` and :meth:`lipschitz`; :meth:`project`,
    :meth:`convexity` and :meth:`mixed` have generic defaults.

    All methods are batched over images: ``x`` has shape (B, C, H, W) and the
    per-image results have a leading dimension B.
    """

    name = "base"

    def __init__(self, n_channels):
        if int(n_channels) not in (1, 3):
            raise ValueError(f"n_channels must be 1 or 3, got {n_channels!r}")
        self.n_channels = int(n_channels)

    # -- parameters -------------------------------------------------------
    @property
    def n_params(self):
        """Number of scalar parameters in theta."""
        raise NotImplementedError

    def init_theta(self, seed, dtype=torch.float32, device="cpu"):
        """Initial parameters drawn from ``seed`` (CPU generator, then moved)."""
        raise NotImplementedError

    def unpack(self, theta):
        """Named views of theta (e.g. ``{"filters": ..., "log_weights": ...}``)."""
        raise NotImplementedError

    def project(self, theta):
        """Projection of theta onto the feasible set (identity by default)."""
        return theta

    # -- maths in x -------------------------------------------------------
    def value(self, x, theta):
        """R_theta(x_i) for each image, shape (B,)."""
        raise NotImplementedError

    def grad(self, x, theta):
        """grad_x R_theta(x_i) for each image, shape of ``x``."""
        raise NotImplementedError

    def hessian(self, x, theta):
        """A :class:`HessianOperator` for Hess_x R_theta at the images ``x``."""
        raise NotImplementedError

    def hvp(self, x, theta, v):
        """Hess_x R_theta(x_i) v_i for each image (uncached convenience)."""
        return self.hessian(x, theta)(v)

    def lipschitz(self, theta):
        """Upper bound on ||Hess_x R_theta(x)|| valid for every x (a float)."""
        raise NotImplementedError

    def convexity(self, theta):
        """Lower bound on the smallest eigenvalue of Hess_x R (0 by default)."""
        return 0.0

    # -- mixed derivative -------------------------------------------------
    def mixed(self, x, theta, q, per_image=False):
        """grad_theta <grad_x R_theta(x_i), q_i> by one backward pass.

        Autograd runs through ONE analytic gradient evaluation (no double
        backward). With ``per_image=False`` the sum over the batch is
        returned, shape (P,); with ``per_image=True`` one row per image,
        shape (B, P), computed with ``torch.func.vmap``.
        """
        theta = theta.detach()
        x = x.detach()
        q = q.detach()
        if not per_image:
            with torch.enable_grad():
                th = theta.clone().requires_grad_(True)
                inner = (self.grad(x, th) * q).sum()
                (g,) = torch.autograd.grad(inner, th)
            return g

        def one(th, xi, qi):
            return (self.grad(xi[None], th) * qi[None]).sum()

        grad_one = torch.func.grad(one)
        return torch.func.vmap(grad_one, in_dims=(None, 0, 0))(theta, x, q)
