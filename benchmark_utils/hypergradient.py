"""Hypergradients by the implicit function theorem (``docs/maths.md`` section 4).

:func:`inexact_hypergradient` runs steps (4.2)-(4.4): a lower-level solve to
eps, conjugate gradient on the Hessian system to delta, one mixed product;
the fixed-step-count pieces of the doubly-stochastic methods (section 5.4)
follow. Every loop iteration makes one counted call, so the limits of
``docs/limits.md`` stop them within one iteration.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from .lower_level import (
    LowerLevelResult,
    _as_tolerance,
    batch_norm,
    chunked_call,
    compact,
    solve_lower_level,
)


def _bdot(a, b):
    return (a * b).flatten(1).sum(dim=1)


def _bcast(s, like):
    return s.view(-1, *([1] * (like.ndim - 1)))


def _ones(like):
    """``(1,) * (like.ndim - 1)``: per-image scalars broadcast over an image."""
    return (1,) * (like.ndim - 1)


class _CGBuffers:
    """Per-image buffers of :func:`conjugate_gradient` (allocated once per
    size of the active set)."""

    def __init__(self, n, like):
        self.dot = torch.empty(n, 1, 1, dtype=like.dtype, device=like.device)
        self.alpha = torch.empty(n, dtype=like.dtype, device=like.device)
        self.still = torch.empty(n, dtype=torch.bool, device=like.device)
        self.flag = torch.empty((), dtype=torch.bool, device=like.device)
        self._n, self._like, self._hp = n, like, None

    def hp(self):
        """(n, C, H, W) buffer of the chunked product (allocated on first use)."""
        if self._hp is None:
            self._hp = self._like.new_empty((self._n, *self._like.shape[1:]))
        return self._hp


@dataclass
class CGResult:
    """Outcome of :func:`conjugate_gradient` (q, iterations, residual norms)."""

    q: torch.Tensor
    n_iter: torch.Tensor
    res_norm: torch.Tensor
    converged: torch.Tensor


def conjugate_gradient(hessian, b, tol, q0=None, max_iter=1_000, warn=True):
    """Batched conjugate gradient on H_i q_i = b_i with per-image tolerance.

    Parameters
    ----------
    hessian : callable
        ``hessian(v, rows)`` applies H_i to the images at positions ``rows``
        of the batch, or to all of them when ``rows`` is None (e.g. the
        counted operator of :meth:`CountedOracles.hessian`).
    b : torch.Tensor
        Right-hand sides (B, C, H, W).
    tol : float or torch.Tensor
        Residual-norm tolerance, scalar or (B,).
    q0 : torch.Tensor, optional
        Warm start. Only images with a non-zero q0 pay the initial product.
    max_iter : int
        Cap on products per image.

    Returns
    -------
    CGResult
    """
    n = b.shape[0]
    tol = _as_tolerance(tol, n, b)
    fmt = torch.contiguous_format
    q = (
        torch.zeros_like(b, memory_format=fmt)
        if q0 is None
        else q0.clone(memory_format=fmt)
    )
    r = b.clone(memory_format=fmt)
    n_iter = torch.zeros(n, dtype=torch.int64, device=b.device)
    if q0 is not None:
        warm = (q0.flatten(1) != 0).any(dim=1).nonzero().flatten()
        if warm.numel():
            r[warm] -= hessian(q[warm], warm)
            n_iter[warm] += 1
    rs = _bdot(r, r)
    # in place on the active images (q, r, rs themselves while all are
    # active); compacted when images stop: O(B) allocations (docs/speed.md)
    active = (rs.sqrt() > tol).nonzero().flatten()
    rows = None if active.numel() == n else active
    qa, ra, rsa, tola = q, r, rs, tol
    if rows is not None:
        qa, ra, rsa, tola = q[rows], r[rows], rs[rows], tol[rows]
    pa = ra.clone()
    work = _CGBuffers(pa.shape[0], b)
    it = 0
    for it in range(max_iter):
        na = pa.shape[0]
        if na == 0:
            break
        hp = chunked_call(hessian, pa, rows, work.hp)
        torch.bmm(pa.view(na, 1, -1), hp.view(na, -1, 1), out=work.dot)
        alpha = torch.div(rsa, work.dot.view(na), out=work.alpha).view(-1, *_ones(b))
        qa.addcmul_(alpha, pa)
        ra.addcmul_(alpha, hp, value=-1)
        torch.bmm(ra.view(na, 1, -1), ra.view(na, -1, 1), out=work.dot)
        rs_new = work.dot.view(na)
        beta = torch.div(rs_new, rsa, out=work.alpha).view(-1, *_ones(b))
        pa.mul_(beta).add_(ra)  # p = r + beta p
        rsa.copy_(rs_new)
        torch.gt(torch.sqrt(rsa, out=work.alpha), tola, out=work.still)
        if not bool(torch.all(work.still, out=work.flag)):
            still = work.still
            # with rows None, q, r, rs are the active iterates themselves
            stopped = None if rows is None else (qa[~still], ra[~still], rsa[~still])
            pos, rows, (qa, ra, rsa, pa, tola) = compact(
                rows, still, n, qa, ra, rsa, pa, tola
            )
            stop = pos[~still]
            n_iter[stop] += it + 1
            if stopped is not None:
                q[stop], r[stop], rs[stop] = stopped
            work = _CGBuffers(rows.numel(), b)
    else:
        it = max_iter - 1
    pos = torch.arange(n, device=b.device) if rows is None else rows
    if pos.numel():
        n_iter[pos] += it + 1
        if rows is not None:
            q[pos], r[pos], rs[pos] = qa, ra, rsa
    res_norm = rs.sqrt()
    converged = res_norm <= tol
    counted = getattr(hessian, "oracles", None)
    if not bool(converged.all()) and hasattr(counted, "record_cap_hit"):
        counted.record_cap_hit()  # read by the divergence rule (docs/limits.md)
    if warn and not bool(converged.all()):
        warnings.warn(
            f"conjugate gradient hit max_iter={max_iter} on "
            f"{int((~converged).sum())} of {n} images",
            RuntimeWarning,
            stacklevel=2,
        )
    return CGResult(q, n_iter, res_norm, converged)


@dataclass
class HypergradientResult:
    """Outcome of :func:`inexact_hypergradient`.

    Attributes
    ----------
    z : torch.Tensor
        Mini-batch hypergradient mean_i z_i, shape (P,).
    z_per_image : torch.Tensor or None
        Rows z_i (B, P) when asked for.
    loss : torch.Tensor
        Upper-level losses l_i(x~_i), (B,).
    grad_loss_norm : torch.Tensor
        ||grad l_i(x~_i)||, (B,).
    lower : LowerLevelResult
    adjoint : CGResult
    """

    z: torch.Tensor
    z_per_image: torch.Tensor | None
    loss: torch.Tensor
    grad_loss_norm: torch.Tensor
    lower: LowerLevelResult
    adjoint: CGResult


def inexact_hypergradient(
    oracles,
    theta,
    idx,
    eps,
    delta,
    memory=None,
    per_image=False,
    max_ll_iter=10_000,
    max_cg_iter=1_000,
    relative_delta=False,
    lower=None,
):
    """Inexact IFT hypergradient of the images ``idx`` at accuracy (eps, delta).

    Parameters
    ----------
    oracles : CountedOracles
    theta : torch.Tensor
    idx : torch.Tensor of int64
        Image indices of the mini-batch.
    eps, delta : float or torch.Tensor
        Lower-level gradient-norm and CG residual tolerances.
    memory : ImageMemory, optional
        Warm starts, updated in place with the new x~_i and q_i.
    per_image : bool
        Also return z_i for each image.
    max_ll_iter, max_cg_iter : int
        Iteration caps (reported with a warning when hit).
    relative_delta : bool
        CG to ||r_i|| <= delta ||grad l_i(x~_i)|| instead of ||r_i|| <= delta
        (``docs/maths.md`` (4.3)).
    lower : LowerLevelResult, optional
        A lower-level result already certified at ``theta`` (step 1 is then
        skipped and costs nothing).

    Returns
    -------
    HypergradientResult
    """
    if memory is None:
        x0, q0 = oracles.initial_x(idx), None
    else:
        x0, q0 = memory.get_x(idx), memory.get_q(idx)
    if lower is None:
        lower = solve_lower_level(oracles, theta, x0, idx, eps, max_iter=max_ll_iter)
    loss, grad_l = oracles.ul_grad(lower.x, idx)
    grad_l_norm = batch_norm(grad_l)
    if relative_delta:
        delta = delta * grad_l_norm.clamp_min(torch.finfo(grad_l.dtype).tiny)
    hessian = oracles.hessian(theta, lower.x, idx)
    adjoint = conjugate_gradient(hessian, grad_l, delta, q0=q0, max_iter=max_cg_iter)
    mixed = oracles.jvp(theta, lower.x, adjoint.q, idx, per_image=per_image)
    if per_image:
        z_rows = -mixed
        z = z_rows.mean(dim=0)
    else:
        z_rows = None
        z = -mixed / idx.numel()
    if memory is not None:
        memory.set_x(idx, lower.x)
        memory.set_q(idx, adjoint.q)
    return HypergradientResult(z, z_rows, loss, grad_l_norm, lower, adjoint)


# -- fixed-step-count pieces (doubly-stochastic methods) --------------------
def lower_level_steps(oracles, theta, x, idx, n_steps, step=None):
    """``n_steps`` plain gradient steps x <- x - step grad_x E_i(x) per image.

    Costs ``n_steps`` ``ll_grad`` per image. ``step`` defaults to 1/L with
    L = :meth:`CountedOracles.lipschitz`. Works in place on one copy of
    ``x`` (the input is not modified), in cache-sized chunks
    (:func:`~benchmark_utils.lower_level.chunked_call`).
    """
    step = 1.0 / oracles.lipschitz(theta) if step is None else step
    x = x.clone(memory_format=torch.contiguous_format)
    buf = []

    def out():
        if not buf:
            buf.append(torch.empty_like(x))
        return buf[0]

    for _ in range(int(n_steps)):
        g = chunked_call(lambda z, i: oracles.ll_grad(theta, z, i), x, idx, out)
        x.add_(g, alpha=-step)
    return x


def _operator(hessian, like):
    """``v -> H v``, chunked when ``hessian`` is a counted operator (which
    takes the rows of the batch); any other callable is applied as is."""
    if getattr(hessian, "oracles", None) is None:
        return hessian
    buf = []

    def out():
        if not buf:
            buf.append(torch.empty_like(like))
        return buf[0]

    return lambda v: chunked_call(hessian, v, None, out)


def neumann_inverse(hessian, b, n_terms, eta):
    """v = eta sum_{j=0}^{Q} (I - eta H)^j b, approximating H^{-1} b.

    ``n_terms`` = Q Hessian-vector products per image (Q + 1 terms), as in
    stocBiO's hypergradient estimate (Ji, Yang, Liang, ICML 2021). Converges for
    0 < eta <= 1/L. Two work arrays, updated in place.
    """
    p = b.clone(memory_format=torch.contiguous_format)
    v = p.clone()
    apply = _operator(hessian, p)
    for _ in range(int(n_terms)):
        p.add_(apply(p), alpha=-eta)
        v.add_(p)
    return v.mul_(eta)


def linear_system_steps(hessian, v, b, n_steps, eta):
    """``n_steps`` gradient steps v <- v - eta (H v - b) on 1/2 v'Hv - b'v.

    Works in place on one copy of ``v`` (the input is not modified).
    """
    v = v.clone(memory_format=torch.contiguous_format)
    apply = _operator(hessian, v)
    for _ in range(int(n_steps)):
        v.add_(apply(v).sub_(b), alpha=-eta)
    return v
