"""A-posteriori error bounds of MAID and the estimation of their constants.

Salehi, Mukherjee, Roberts, Ehrhardt, "An adaptively inexact first-order
method for bilevel optimization with application to hyperparameter learning"
(arXiv 2308.10098, MAID); ``docs/maths.md`` sections 4 and 5. Shared by the
MAID and HOAG solvers and usable by tests.

Notation (per image i of a batch of n images, theta fixed): x~_i the
lower-level iterate with certified gradient norm g_i = ||grad_x E_i(x~_i)||,
so that ||x~_i - x_i(theta)|| <= e_i = g_i / m (m the strong-convexity
modulus); q_i the conjugate-gradient solution of H_i(x~_i) q = grad l_i(x~_i)
with residual norm delta_i; J_i(x) = d^2 E_i / dx dtheta (so J_i^T q is the
``jvp`` oracle).

Hypergradient error (:func:`hypergradient_error_bound`). With
z = -1/n sum_i J_i(x~_i)^T q_i and grad f = -1/n sum_i J_i(x*_i)^T q*_i,

    z - grad f = 1/n sum_i (J_i(x*_i) - J_i(x~_i))^T q*_i
                 + 1/n sum_i J_i(x~_i)^T (q*_i - q_i),

    ||q*_i|| <= b_i = (||grad l_i(x~_i)|| + L_g e_i) / m,
    ||q*_i - q_i|| <= a_i = L_g e_i / m + L_H e_i ||grad l_i(x~_i)|| / m^2
                            + delta_i / m,

hence

    ||z - grad f|| <= omega = L_J mean_i(e_i b_i) + ||J||_rms rms_i(a_i),

where ||J||_rms = ||J_stack|| / sqrt(n) is the norm of the stacked operator
u -> sum_i J_i^T u_i divided by sqrt(n) (<= max_i ||J_i||; Cauchy-Schwarz over
images gives the rms). For one image, or equal per-image quantities, this is
exactly the formula of ``docs/maths.md`` section 4; aggregating per image with
the a-posteriori g_i and delta_i (instead of the tolerances eps and delta) is
tighter and equally rigorous.

Function values (:func:`loss_bounds`): l_i is quadratic with Lipschitz
gradient L_g, so |l_i(x*_i) - l_i(x~_i)| <= ||grad l_i(x~_i)|| e_i + L_g e_i^2/2
and f(theta) = mean_i l_i(x*_i) lies in mean_i l_i(x~_i) -/+ mean_i(...).

Constants (:func:`estimate_constants`). L_g = 2/d and m are exact and free
(:attr:`CountedOracles.ul_lipschitz`, :meth:`CountedOracles.strong_convexity`).
||J||, L_H and L_J have no closed form for a generic regulariser; they are
estimated at the current (theta, x~, q) by Lanczos iterations (full
re-orthogonalisation, :func:`lanczos_extreme`) whose operator products are
central finite differences of counted oracles. Per image and Lanczos step:

- ||J_stack||: Lanczos on J_stack^T J_stack (in theta space). J_stack p =
  d/ds grad_x E(x~; theta + s p) by a central difference of ``ll_grad`` in
  theta (2 ``ll_grad``); J_stack^T u is one ``jvp``.
- L_H: x -> Hess_x E_i(x) q_i has the derivative M_i h = D^3 E_i(x~_i)[h, q_i, .],
  symmetric in h (third derivatives commute), so Lanczos needs only M_i h, a
  central difference of ``hvp`` in x (2 ``hvp``); L_H = max_i ||M_i|| / ||q_i||.
- L_J: N_i h = d/dt J_i(x~_i + t h)^T q_i (central difference of ``jvp`` in
  x, 2 ``jvp``) and N_i^T p = d/ds Hess_x E_i(x~_i; theta + s p) q_i (central
  difference of ``hvp`` in theta, 2 ``hvp``, one image at a time); Lanczos on
  N_i^T N_i; L_J = max_i ||N_i|| / ||q_i||.

Total: 6 n_iter (``ll_grad`` + ``hvp``) and 3 n_iter ``jvp`` per image used.

How conservative each estimate is (measurements: ``docs/tuning.md``, MAID):

- Each is a LOWER estimate of its local quantity (Ritz values lie inside the
  spectrum); ``tests/test_maid_hoag.py`` checks all three against dense
  autograd values.
- They are local: at x~ and along the computed adjoint q_i (the first-order
  terms that enter the error), not global Lipschitz constants over all x and
  directions (for FoE those would be orders of magnitude larger).
- MAID estimates them on a subset of images (``const_images``), which can
  miss the largest per-image values.
- Nevertheless omega is very pessimistic, because it multiplies worst-case
  norms (||J|| ||q - q*||, ||J|| L_H e ||grad l|| / m^2) and e_i = g_i / m
  assumes the lower-level residual lies in the weakest-curvature direction.
  The bracket of f is tight.
- ``safety`` multiplies the three estimates (MAID's default: 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .hypergradient import _bcast, _bdot
from .lower_level import batch_norm


def _per_image_unit(v):
    """Each image of ``v`` scaled to unit norm (zero images left at zero)."""
    n = batch_norm(v).clamp_min(torch.finfo(v.dtype).tiny)
    return v / _bcast(n, v)


@dataclass
class BoundConstants:
    """Estimated constants of the a-posteriori bound.

    Attributes
    ----------
    jac_norm : float
        ||J||_rms = ||J_stack|| / sqrt(n) at x~ (see module docstring).
    lip_hess : float
        L_H, Lipschitz estimate of x -> Hess_x E_i(x).
    lip_jac : float
        L_J, Lipschitz estimate of x -> J_i(x).
    cost : int
        ``ll_grad + hvp`` spent on the estimation.
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

    Parameters
    ----------
    apply : callable
        ``apply(v)`` maps a batch (B, ...) to (B, ...), row i by operator i.
    v0 : torch.Tensor
        Starting vectors (B, ...), not orthogonal to the top eigenvector.
    n_iter : int
        Lanczos steps (= operator applications), with full
        re-orthogonalisation.

    Returns
    -------
    torch.Tensor
        max_j |Ritz value j| per operator, (B,), in float64. Ritz values lie
        inside the spectrum, so this is a lower estimate of the largest
        |eigenvalue|, exact once n_iter reaches the operator's dimension; it
        converges much faster than the power iteration with the same products.
    """
    basis = [_per_image_unit(v0)]
    alphas, betas = [], []
    n_iter = int(n_iter)
    for j in range(n_iter):
        w = apply(basis[j])
        alphas.append(_bdot(w, basis[j]))
        for _ in range(2):  # full re-orthogonalisation, twice is enough
            for v in basis:
                w = w - _bcast(_bdot(w, v), w) * v
        if j == n_iter - 1:
            break
        beta = batch_norm(w)
        betas.append(beta)
        basis.append(w / _bcast(beta.clamp_min(torch.finfo(w.dtype).tiny), w))
    a = torch.stack(alphas, dim=1).to(torch.float64)
    t = torch.diag_embed(a)
    if betas:
        b = torch.stack(betas, dim=1).to(torch.float64)
        t = t + torch.diag_embed(b, offset=1) + torch.diag_embed(b, offset=-1)
    return torch.linalg.eigvalsh(t).abs().amax(dim=1)


def _randn_like(x, gen):
    return torch.randn(x.shape, generator=gen, dtype=torch.float64).to(x)


def estimate_jac_norm(oracles, theta, x, idx, n_iter=4, rel_step=1e-3, gen=None):
    """||J_stack|| / sqrt(n) at (theta, x) by Lanczos on J_stack^T J_stack.

    Each step: J_stack p by a central difference of ``ll_grad`` in theta
    (2 per image) and J_stack^T u by one ``jvp`` per image.
    """
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


def _nonzero_adjoints(x, q, idx):
    """(x, q, idx, ||q_i||) restricted to the images with q_i != 0, or None.

    An image with q_i = 0 contributes nothing to the L_H and L_J terms.
    """
    qn = batch_norm(q)
    keep = (qn > 0).nonzero().flatten()
    if keep.numel() == 0:
        return None
    return x[keep], q[keep], idx[keep], qn[keep]


def estimate_lip_hess(oracles, theta, x, q, idx, n_iter=4, rel_step=1e-3, gen=None):
    """max_i ||D_x(Hess_x E_i(x) q_i)|| / ||q_i|| by Lanczos.

    The derivative M_i h = D^3 E_i(x~_i)[h, q_i, .] is symmetric in h (third
    derivatives commute), so Lanczos needs only M_i h: central differences of
    ``hvp`` in x, 2 ``hvp`` per image per step.
    """
    kept = _nonzero_adjoints(x, q, idx)
    if kept is None:
        return 0.0
    x, q, idx, qn = kept
    t = _fd_step(float(batch_norm(x).max()), rel_step)

    def apply(h):
        hp = oracles.hessian(theta, x + t * h, idx)(q)
        hm = oracles.hessian(theta, x - t * h, idx)(q)
        return (hp - hm) / (2 * t)

    lam = lanczos_extreme(apply, _randn_like(x, gen), n_iter)
    return float((lam / qn.to(torch.float64)).max())


def estimate_lip_jac(oracles, theta, x, q, idx, n_iter=4, rel_step=1e-3, gen=None):
    """max_i ||D_x(J_i(x)^T q_i)|| / ||q_i|| by Lanczos on N_i^T N_i.

    N_i h by central differences of ``jvp`` in x (2 ``jvp`` per image),
    N_i^T p by central differences of ``hvp`` in theta, one image at a time
    (2 ``hvp`` per image).
    """
    kept = _nonzero_adjoints(x, q, idx)
    if kept is None:
        return 0.0
    x, q, idx, qn = kept
    t = _fd_step(float(batch_norm(x).max()), rel_step)
    s = _fd_step(theta.norm(), rel_step)

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

    lam = lanczos_extreme(apply, _randn_like(x, gen), n_iter)
    return float((lam.sqrt() / qn.to(torch.float64)).max())


def estimate_constants(
    oracles, theta, x, q, idx, n_iter=4, rel_step=1e-3, seed=0, safety=1.0
):
    """||J||_rms, L_H and L_J at (theta, x~, q) (see module docstring).

    Parameters
    ----------
    oracles : CountedOracles
        Every product is counted: 6 n_iter ``ll_grad`` + ``hvp`` per image.
    theta : torch.Tensor
    x, q : torch.Tensor
        Lower-level iterates x~_i and adjoints q_i (B, C, H, W).
    idx : torch.Tensor of int64
    n_iter : int
        Lanczos steps per constant.
    rel_step : float
        Finite-difference step relative to max(||theta||, 1) in theta and to
        max_i max(||x~_i||, 1) in x.
    seed : int
        Seed of the random starting vectors.
    safety : float
        Multiplies the three estimates (>= 1 for margin).

    Returns
    -------
    BoundConstants
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
    """omega >= ||z - grad f|| from a-posteriori per-image quantities.

    Parameters
    ----------
    grad_norm : torch.Tensor
        ||grad_x E_i(x~_i)|| per image (B,) (``LowerLevelResult.grad_norm``).
    grad_loss_norm : torch.Tensor
        ||grad l_i(x~_i)|| (B,).
    res_norm : torch.Tensor
        Conjugate-gradient residual norms delta_i (B,).
    m : float
        Strong-convexity modulus.
    lip_g : float
        L_g, Lipschitz constant of grad l_i.
    constants : BoundConstants

    Returns
    -------
    float
        omega = L_J mean(e_i b_i) + ||J||_rms rms(a_i) (module docstring).
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
    """Half-width r = mean_i(||grad l_i|| e_i + L_g e_i^2 / 2) of the f bracket."""
    e = _as_f64(grad_norm) / m
    gl = _as_f64(grad_loss_norm)
    return float((gl * e + 0.5 * lip_g * e * e).mean())


def loss_bounds(loss, grad_norm, grad_loss_norm, m, lip_g):
    """Certified bracket (lower, upper) of f = mean_i l_i(x_i(theta)).

    Parameters
    ----------
    loss : torch.Tensor
        l_i(x~_i) (B,).
    grad_norm, grad_loss_norm : torch.Tensor
        ||grad_x E_i(x~_i)|| and ||grad l_i(x~_i)|| (B,).
    m, lip_g : float
        Strong convexity and L_g.
    """
    g = float(_as_f64(loss).mean())
    r = loss_error(grad_norm, grad_loss_norm, m, lip_g)
    return g - r, g + r
