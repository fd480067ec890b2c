"""A-posteriori error bounds of MAID and the Lanczos estimates of their constants.

[MAID] (arXiv 2308.10098); the formulas, their per-image aggregation, the
finite-difference operators behind the constants and how conservative each
piece is are in ``docs/maths.md`` section 4.3. Shared by MAID and HOAG.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch

from .hypergradient import _bcast, _bdot
from .lower_level import batch_norm

#: a Lanczos residual below this many machine epsilons of ||A v_j|| is rounding:
#: the Krylov space is exhausted and the row stops
BREAKDOWN = 1e3


def _per_image_unit(v):
    """Each image of ``v`` scaled to unit norm (zero images left at zero)."""
    n = batch_norm(v).clamp_min(torch.finfo(v.dtype).tiny)
    return v / _bcast(n, v)


@dataclass
class BoundConstants:
    """||J||_rms, L_H, L_J of (4.6) (``docs/maths.md`` 4.3) and their cost.

    ``cost`` is the ``ll_grad + hvp`` spent on the estimation.
    """

    jac_norm: float
    lip_hess: float
    lip_jac: float
    cost: int = 0

    def scaled(self, factor):
        """The same constants times ``factor`` (the safety margin)."""
        return BoundConstants(
            self.jac_norm * factor,
            self.lip_hess * factor,
            self.lip_jac * factor,
            self.cost,
        )


def _fd_step(ref_norm, rel_step):
    return rel_step * max(float(ref_norm), 1.0)


def lanczos_extreme(apply, v0, n_iter):
    """Largest |eigenvalue| of B independent symmetric operators, by Lanczos.

    ``apply(v)`` maps a batch (B, ...) to (B, ...), row i by operator i;
    ``v0`` (B, ...) are the starting vectors; ``n_iter`` Lanczos steps with
    full re-orthogonalisation, a row stopping once its Krylov space is
    exhausted. Returns max_j |Ritz value j| per row, (B,) float64: a lower
    estimate, exact once the space is exhausted. Never raises: a row whose
    tridiagonal matrix is not finite gives inf, a failed eigenvalue solve the
    Gershgorin bound (>= every |Ritz value|), with a ``RuntimeWarning``
    (``docs/maths.md`` section 4.3).
    """
    basis = [_per_image_unit(v0)]
    alphas, betas = [], []
    n_iter = int(n_iter)
    tol = BREAKDOWN * torch.finfo(v0.dtype).eps
    for j in range(n_iter):
        w = apply(basis[j])
        alphas.append(_bdot(w, basis[j]))
        scale = batch_norm(w)
        for _ in range(2):  # full re-orthogonalisation, twice is enough
            for v in basis:
                w = w - _bcast(_bdot(w, v), w) * v
        if j == n_iter - 1:
            break
        beta = batch_norm(w)
        # a residual at rounding level of A v_j: invariant subspace found
        beta = torch.where(beta > tol * scale, beta, torch.zeros_like(beta))
        betas.append(beta)
        safe = beta.clamp_min(torch.finfo(w.dtype).tiny)
        basis.append(torch.where(_bcast(beta > 0, w), w / _bcast(safe, w), 0.0))
    a = torch.stack(alphas, dim=1).to(torch.float64)
    t = torch.diag_embed(a)
    if betas:
        b = torch.stack(betas, dim=1).to(torch.float64)
        t = t + torch.diag_embed(b, offset=1) + torch.diag_embed(b, offset=-1)
    return _largest_abs_eigenvalue(t)


def _largest_abs_eigenvalue(t):
    """max |eigenvalue| of each symmetric tridiagonal t (B, k, k), with fallbacks."""
    finite = torch.isfinite(t).flatten(1).all(dim=1)
    lam = torch.full(t.shape[:1], math.inf, dtype=t.dtype)
    good = t[finite]
    failed = False
    try:
        lam[finite] = torch.linalg.eigvalsh(good).abs().amax(dim=1)
    except torch.linalg.LinAlgError:
        lam[finite] = good.abs().sum(dim=2).amax(dim=1)
        failed = True
    if failed or not bool(finite.all()):
        warnings.warn(
            f"lanczos_extreme: {int((~finite).sum())} tridiagonal matrices not "
            f"finite (estimate inf), eigenvalue solver failed: {failed} "
            "(Gershgorin bound used)",
            RuntimeWarning,
            stacklevel=3,
        )
    return lam


def _randn_like(x, gen):
    return torch.randn(x.shape, generator=gen, dtype=torch.float64).to(x)


def estimate_jac_norm(oracles, theta, x, idx, n_iter=4, rel_step=1e-3, gen=None):
    """||J||_rms = ||J_stack|| / sqrt(n) at (theta, x) (``docs/maths.md`` 4.3)."""
    n = idx.numel()
    s = _fd_step(theta.norm(), rel_step)

    def apply(p):
        p = p[0]
        u = (
            oracles.ll_grad(theta + s * p, x, idx)
            - oracles.ll_grad(theta - s * p, x, idx)
        ) / (2 * s)
        return oracles.jvp(theta, x, u, idx)[None]

    lam = lanczos_extreme(apply, _randn_like(theta[None], gen), n_iter)
    return math.sqrt(float(lam[0])) / math.sqrt(n)


def _adjoint_lanczos(make_apply, x, q, idx, n_iter, rel_step, gen):
    """Lanczos on ``make_apply(x, q, idx, t)`` over the images with q_i != 0.

    Returns (max |Ritz value| per kept image, ||q_i||), or None when every
    q_i = 0 (they add nothing); t is the central-difference step in x.
    """
    qn = batch_norm(q)
    keep = (qn > 0).nonzero().flatten()
    if keep.numel() == 0:
        return None
    x, q, idx = x[keep], q[keep], idx[keep]
    t = _fd_step(float(batch_norm(x).max()), rel_step)
    lam = lanczos_extreme(make_apply(x, q, idx, t), _randn_like(x, gen), n_iter)
    return lam, qn[keep].to(torch.float64)


def estimate_lip_hess(oracles, theta, x, q, idx, n_iter=4, rel_step=1e-3, gen=None):
    """L_H = max_i ||D_x(Hess_x E_i(x) q_i)|| / ||q_i|| (``docs/maths.md`` 4.3)."""

    def make_apply(x, q, idx, t):
        def apply(h):
            hp = oracles.hessian(theta, x + t * h, idx)(q)
            hm = oracles.hessian(theta, x - t * h, idx)(q)
            return (hp - hm) / (2 * t)

        return apply

    out = _adjoint_lanczos(make_apply, x, q, idx, n_iter, rel_step, gen)
    return 0.0 if out is None else float((out[0] / out[1]).max())


def estimate_lip_jac(oracles, theta, x, q, idx, n_iter=4, rel_step=1e-3, gen=None):
    """L_J = max_i ||D_x(J_i(x)^T q_i)|| / ||q_i|| (``docs/maths.md`` 4.3)."""
    s = _fd_step(theta.norm(), rel_step)

    def make_apply(x, q, idx, t):
        def apply(h):
            jp = oracles.jvp(theta, x + t * h, q, idx, per_image=True)
            jm = oracles.jvp(theta, x - t * h, q, idx, per_image=True)
            p = (jp - jm) / (2 * t)  # N_i h_i, (B, P)
            rows = []
            for i in range(idx.numel()):
                sl = slice(i, i + 1)
                up = oracles.hessian(theta + s * p[i], x[sl], idx[sl])(q[sl])
                um = oracles.hessian(theta - s * p[i], x[sl], idx[sl])(q[sl])
                rows.append((up - um) / (2 * s))
            return torch.cat(rows)  # N_i^T N_i h_i

        return apply

    out = _adjoint_lanczos(make_apply, x, q, idx, n_iter, rel_step, gen)
    return 0.0 if out is None else float((out[0].sqrt() / out[1]).max())


def estimate_constants(
    oracles, theta, x, q, idx, n_iter=4, rel_step=1e-3, seed=0, safety=1.0
):
    """||J||_rms, L_H and L_J at (theta, x~, q) (``docs/maths.md`` 4.3).

    ``x``, ``q`` (B, C, H, W) are the iterates x~_i and adjoints q_i of the
    images ``idx``; ``n_iter`` Lanczos steps per constant, each counted (6
    n_iter ``ll_grad`` + ``hvp`` and 3 n_iter ``jvp`` per image); central
    differences of step ``rel_step`` times max(||theta||, 1) in theta and
    max_i max(||x~_i||, 1) in x; ``seed`` seeds the starting vectors;
    ``safety`` multiplies the three estimates. Returns :class:`BoundConstants`.
    """
    gen = torch.Generator().manual_seed(int(seed))
    cost0 = oracles.counters.cost
    theta = theta.detach()
    jac = estimate_jac_norm(oracles, theta, x, idx, n_iter, rel_step, gen)
    lh = estimate_lip_hess(oracles, theta, x, q, idx, n_iter, rel_step, gen)
    lj = estimate_lip_jac(oracles, theta, x, q, idx, n_iter, rel_step, gen)
    consts = BoundConstants(jac, lh, lj, oracles.counters.cost - cost0)
    return consts.scaled(safety)


def _as_f64(t):
    return torch.as_tensor(t).detach().to(torch.float64).flatten()


def hypergradient_error_bound(grad_norm, grad_loss_norm, res_norm, m, lip_g, constants):
    """omega >= ||z - grad f||, (4.6) aggregated per image (``docs/maths.md`` 4.3).

    Parameters
    ----------
    grad_norm, grad_loss_norm, res_norm : torch.Tensor
        Per image (B,): ||grad_x E_i(x~_i)||, ||grad l_i(x~_i)|| and the
        conjugate-gradient residual norm delta_i.
    m, lip_g : float
        Strong-convexity modulus and L_g.
    constants : BoundConstants

    Returns
    -------
    float
        omega = L_J mean_i(e_i b_i) + ||J||_rms rms_i(a_i).
    """
    e = _as_f64(grad_norm) / m
    gl = _as_f64(grad_loss_norm)
    dl = _as_f64(res_norm)
    b = (gl + lip_g * e) / m
    a = lip_g * e / m + constants.lip_hess * e * gl / m**2 + dl / m
    term_j = constants.lip_jac * float((e * b).mean())
    term_q = constants.jac_norm * float(a.pow(2).mean().sqrt())
    return term_j + term_q


def loss_error(grad_norm, grad_loss_norm, m, lip_g):
    """Half-width r = mean_i(||grad l_i|| e_i + L_g e_i^2 / 2) of the bracket (4.7)."""
    e = _as_f64(grad_norm) / m
    gl = _as_f64(grad_loss_norm)
    return float((gl * e + 0.5 * lip_g * e * e).mean())


def loss_bounds(loss, grad_norm, grad_loss_norm, m, lip_g):
    """Certified bracket (g - r, g + r) of f = mean_i l_i(x_i(theta)), (4.7).

    ``loss`` holds l_i(x~_i), g its mean; the other arguments are those of
    :func:`hypergradient_error_bound`.
    """
    g = float(_as_f64(loss).mean())
    r = loss_error(grad_norm, grad_loss_norm, m, lip_g)
    return g - r, g + r
