"""Interface shared by every learnable convex regulariser R_theta(x).

``docs/maths.md`` section 2; the interface, its autograd defaults and how to
add a model: ``docs/regularisers.md``, "The interface".
"""

from __future__ import annotations

import math

import torch


class HessianOperator:
    """Hess_x R_theta at fixed points: ``H(v, rows)`` = Hess R(x[rows]) v
    (``rows=None``: every image), with ``apply(v, rows)`` computing it."""

    def __init__(self, apply):
        self._apply = apply

    def __call__(self, v, rows=None):
        return self._apply(v, rows)


def check_positive(**values):
    """Raise a one-line ``ValueError`` unless every given value is > 0."""
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value!r}")


def check_filters(n_channels, n_filters, kernel_size):
    """Raise a one-line ``ValueError`` unless n_filters >= 1 and kernel_size
    is odd, >= 3 in grey (a zero-mean 1 x 1 grey filter is zero)."""
    if int(n_filters) < 1:
        raise ValueError(f"n_filters must be >= 1, got {n_filters!r}")
    if int(kernel_size) < 1 or int(kernel_size) % 2 == 0:
        raise ValueError(
            f"kernel_size must be a positive odd integer, got {kernel_size!r}"
        )
    if int(kernel_size) == 1 and n_channels == 1:
        raise ValueError(
            "kernel_size must be an odd integer >= 3 for grayscale images "
            f"(a zero-mean 1x1 filter is identically zero), got {kernel_size!r}"
        )


class Regulariser:
    """A convex regulariser R_theta(x) with flat parameters theta.

    Subclasses set :attr:`layout` (``(name, shape)`` blocks of theta; names
    in :attr:`stacked` may repeat) and implement :meth:`initial_views`,
    :meth:`value` and :meth:`lipschitz`; the rest has defaults
    (``docs/regularisers.md``). Methods are batched over images (B, C, H, W);
    ``value`` of image i depends on ``x[i]`` only. ``n_channels``: 1 or 3.
    """

    name = "base"
    stacked = ()

    def __init__(self, n_channels):
        if int(n_channels) not in (1, 3):
            raise ValueError(f"n_channels must be 1 or 3, got {n_channels!r}")
        self.n_channels = int(n_channels)
        self.layout = []

    # -- parameters -------------------------------------------------------
    @property
    def n_params(self):
        """Number of scalar parameters in theta."""
        return sum(math.prod(shape) for _, shape in self.layout)

    def unpack(self, theta):
        """Views of theta, one per block of :attr:`layout` (lists for
        the names in :attr:`stacked`)."""
        views = {key: [] for key in self.stacked}
        start = 0
        for key, shape in self.layout:
            size = math.prod(shape)
            view = theta[start : start + size].view(shape)
            start += size
            if key in self.stacked:
                views[key].append(view)
            else:
                views[key] = view
        return views

    def initial_views(self, gen):
        """float64 initial value of every block of :attr:`layout`, in order,
        drawn from the CPU generator ``gen``."""
        raise NotImplementedError

    def init_theta(self, seed, dtype=torch.float32, device="cpu"):
        """Initial parameters drawn from ``seed`` (CPU float64, then moved)."""
        gen = torch.Generator().manual_seed(int(seed))
        parts = [part.flatten() for part in self.initial_views(gen)]
        return torch.cat(parts).to(device=device, dtype=dtype)

    def project(self, theta):
        """Projection of theta onto the feasible set (identity by default)."""
        return theta

    # -- maths in x -------------------------------------------------------
    def value(self, x, theta):
        """R_theta(x_i) for each image, shape (B,)."""
        raise NotImplementedError

    def grad(self, x, theta):
        """grad_x R_theta(x_i) for each image, shape of ``x`` (default:
        ``torch.func.grad`` of :meth:`value`)."""
        return torch.func.grad(lambda z: self.value(z, theta).sum())(x)

    def hessian(self, x, theta):
        """A :class:`HessianOperator` for Hess_x R_theta at ``x`` (default:
        ``torch.func.jvp`` of :meth:`grad`, nothing cached)."""
        x, theta = x.detach(), theta.detach()

        def apply(v, rows=None):
            point = x if rows is None else x[rows]
            tangent = torch.func.jvp(lambda z: self.grad(z, theta), (point,), (v,))
            return tangent[1]

        return HessianOperator(apply)

    def lipschitz(self, theta):
        """Upper bound on ||Hess_x R_theta(x)|| valid for every x (a float)."""
        raise NotImplementedError

    def convexity(self, theta):
        """Lower bound on the smallest eigenvalue of Hess_x R (0 by default)."""
        return 0.0

    # -- mixed derivative -------------------------------------------------
    def work_flops(self, image_shape):
        """FLOPs per image (C, H, W) of ``grad``, ``hvp``, ``build``, ``jvp``
        and ``jvp_per_image`` (:mod:`benchmark_utils.work`); this default
        prices the autograd fall-backs (``docs/regularisers.md``)."""
        g = 20.0 * math.prod(image_shape)
        return {
            "grad": g,
            "hvp": 2 * g,
            "build": 0.0,
            "jvp": 2.5 * g,
            "jvp_per_image": 2.5 * g,
        }

    def mixed(self, x, theta, q, per_image=False):
        """grad_theta <grad_x R_theta(x_i), q_i>, summed (P,) or per image
        (B, P): a backward pass through :meth:`grad` (docs/maths.md s. 3.3)."""
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
