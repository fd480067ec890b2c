"""Interface shared by every learnable convex regulariser R_theta(x).

``docs/maths.md`` section 2. Parameters theta are one flat 1-D tensor so that
solvers (SGD, Adam, line searches, norms) never need to know the model; each
regulariser declares a parameter layout (named blocks of given shapes) and
:meth:`Regulariser.unpack` splits theta into views of those blocks.

A new regulariser implements only its energy (:meth:`Regulariser.value`), its
layout, initial values, projection and a Lipschitz bound; gradient, Hessian
operator and mixed product then come from autograd (``torch.func``). The
regularisers of the benchmark override them with analytic formulas where
speed matters. ``docs/regularisers.md`` documents each model.
"""

from __future__ import annotations

import math

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


def check_positive(**values):
    """Raise a one-line ``ValueError`` unless every given value is > 0."""
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value!r}")


def check_filters(n_channels, n_filters, kernel_size):
    """Validate the filter count and the odd filter side of a conv model.

    A model whose first-layer filters are zero-mean over (C, s, s) cannot have
    1 x 1 filters in grayscale: such a filter is identically zero (and its
    unit-norm initialisation divides by zero).
    """
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
    """A convex regulariser R_theta(x) with learnable flat parameters theta.

    Subclasses set :attr:`layout` (in ``__init__``) and implement
    :meth:`initial_views`, :meth:`value` and :meth:`lipschitz`; they may
    override :meth:`project` (identity), :meth:`convexity` (0) and, for
    speed, :meth:`grad`, :meth:`hessian` and :meth:`mixed`.

    All methods are batched over images: ``x`` has shape (B, C, H, W) and the
    per-image results have a leading dimension B. ``value`` of image i must
    depend on ``x[i]`` only (the autograd defaults differentiate the sum).

    Parameters
    ----------
    n_channels : int
        Image channels C (1 or 3).

    Attributes
    ----------
    layout : list of (str, tuple)
        The blocks of theta in order, as ``(name, shape)``. A name listed in
        :attr:`stacked` may repeat; its views form a list.
    stacked : tuple of str
        Names whose views :meth:`unpack` returns as lists (one per block).
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
        """Initial value of every block of :attr:`layout`, in order.

        Parameters
        ----------
        gen : torch.Generator
            CPU generator seeded by :meth:`init_theta`; draw in layout order.

        Returns
        -------
        list of torch.Tensor
            float64 tensors with the shapes of :attr:`layout`.
        """
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
        """grad_x R_theta(x_i) for each image, shape of ``x``.

        Default: reverse-mode autograd of :meth:`value` (``torch.func.grad``,
        which also runs under ``torch.no_grad`` and composes with ``vmap``).
        """
        return torch.func.grad(lambda z: self.value(z, theta).sum())(x)

    def hessian(self, x, theta):
        """A :class:`HessianOperator` for Hess_x R_theta at the images ``x``.

        Default: forward-over-reverse autograd, ``torch.func.jvp`` of
        :meth:`grad` along ``v`` (nothing cached; each product costs about
        three evaluations of R).
        """
        x, theta = x.detach(), theta.detach()

        def apply(v, rows=None):
            point = x if rows is None else x[rows]
            tangent = torch.func.jvp(lambda z: self.grad(z, theta), (point,), (v,))
            return tangent[1]

        return HessianOperator(apply)

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
    def work_flops(self, image_shape):
        """FLOPs of each oracle's regulariser part on one image.

        The counts behind the work axis (:mod:`benchmark_utils.work`).
        Returns a dict with ``grad``, ``hvp``, ``build`` (building the
        Hessian operator at x), ``jvp`` and ``jvp_per_image`` (the mixed
        product, batch and per-image forms). Models with analytic maths
        override it with their convolution counts. This default, for the
        autograd fall-backs, assumes a gradient of about 20 operations per
        pixel value, a forward-over-reverse HVP of twice that with nothing
        cached at build, and a mixed product of 2.5 gradients (one backward
        pass through the gradient).
        """
        g = 20.0 * math.prod(image_shape)
        return {
            "grad": g,
            "hvp": 2 * g,
            "build": 0.0,
            "jvp": 2.5 * g,
            "jvp_per_image": 2.5 * g,
        }

    def mixed(self, x, theta, q, per_image=False):
        """grad_theta <grad_x R_theta(x_i), q_i> by one backward pass.

        Autograd runs backward through ONE evaluation of :meth:`grad`: no
        double backward when ``grad`` is analytic, a double backward through
        the autograd default otherwise. With ``per_image=False`` the sum over
        the batch is returned, shape (P,); with ``per_image=True`` one row per
        image, shape (B, P), computed with ``torch.func.vmap``.
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
