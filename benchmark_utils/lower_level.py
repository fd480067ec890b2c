"""Batched accelerated gradient for the lower-level problems (``docs/maths.md`` 4.2).

Nesterov's constant-momentum scheme (step 1/L) with the per-image gradient
restart of O'Donoghue and Candes; each image stops as soon as its gradient
norm at the extrapolated point meets its tolerance (so the returned point is
certified) and leaves the batch. One counted ``ll_grad`` per iteration, so
the limits of ``docs/limits.md`` stop a solve within one iteration.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass

import torch


@dataclass
class LowerLevelResult:
    """Outcome of :func:`solve_lower_level`.

    Attributes
    ----------
    x : torch.Tensor
        Approximate solutions (B, C, H, W).
    n_iter : torch.Tensor
        Gradient evaluations spent per image (int64, (B,)).
    grad_norm : torch.Tensor
        ||grad_x E_i(x_i)|| at the returned points.
    converged : torch.Tensor
        Bool (B,): tolerance met.
    """

    x: torch.Tensor
    n_iter: torch.Tensor
    grad_norm: torch.Tensor
    converged: torch.Tensor

    @property
    def hit_cap(self):
        """Number of images that stopped at the iteration cap."""
        return int((~self.converged).sum())


def batch_norm(t):
    """Euclidean norm of each image of a batch, shape (B,)."""
    return t.flatten(1).norm(dim=1)


#: pixels (H * W) per chunk of a batched oracle call: measured fastest per
#: image for 8 filters 5x5 at 64, 128 and 256 pixels a side
#: (``docs/speed.md``, "Cache-sized chunks")
CHUNK_PIXELS = 65536


def chunk_size(x):
    """Images per cache-sized chunk of a batch shaped like ``x`` (B, C, H, W).

    The loops call the oracles chunk by chunk, with bitwise the same results
    (``docs/speed.md``, "Cache-sized chunks").
    """
    return max(1, CHUNK_PIXELS // (x.shape[-1] * x.shape[-2]))


def chunked_call(call, x, rows, out):
    """``call(x[a:b], rows[a:b])`` over cache-sized chunks, into ``out``.

    ``rows`` is sliced along with ``x`` (None: ``call`` gets None for a
    single chunk, else the chunk's positions); ``out()`` gives the (B, C, H,
    W) buffer, asked for only when the batch takes several chunks.
    """
    b, step = x.shape[0], chunk_size(x)
    if b <= step:
        return call(x, rows)
    if rows is None:
        rows = _arange(b, x.device)
    buf = out()
    for a in range(0, b, step):
        buf[a : a + step].copy_(call(x[a : a + step], rows[a : a + step]))
    return buf


@functools.lru_cache(maxsize=16)
def _arange(n, device):
    """``torch.arange(n)``, kept: the chunked loops ask for it every call."""
    return torch.arange(n, device=device)


class _SolveBuffers:
    """Per-image buffers of :func:`solve_lower_level` (allocated once per
    size of the active set)."""

    def __init__(self, n, like):
        self.norm = torch.empty(n, dtype=like.dtype, device=like.device)
        self.done = torch.empty(n, dtype=torch.bool, device=like.device)
        self.dot = torch.empty(n, 1, 1, dtype=like.dtype, device=like.device)
        self.coef = torch.empty(n, dtype=like.dtype, device=like.device)
        self.flag = torch.empty((), dtype=torch.bool, device=like.device)
        self._like = like
        self._grad = None

    def grad(self):
        """(n, C, H, W) buffer of the chunked gradient (allocated on first use)."""
        if self._grad is None:
            self._grad = torch.empty_like(self._like)
        return self._grad


def _positions(active, n, device):
    return torch.arange(n, device=device) if active is None else active


def compact(active, keep, n, *tensors):
    """Restrict an active set of images to those that ``keep`` (once per stop).

    ``active`` holds the positions of the active images in the batch of
    ``n`` (None: all of them). Returns their positions, the positions that
    stay, and ``[t[keep] for t in tensors]``.
    """
    rows = _positions(active, n, keep.device)
    return rows, rows[keep], [t[keep] for t in tensors]


def _as_tolerance(tol, n, like):
    tol = torch.as_tensor(tol, dtype=like.dtype, device=like.device)
    if tol.ndim == 0:
        tol = tol.expand(n)
    if tol.shape != (n,):
        raise ValueError(f"tol must be a scalar or have shape ({n},)")
    if bool((tol <= 0).any()):
        raise ValueError("tol must be > 0")
    return tol


def solve_lower_level(oracles, theta, x0, idx, tol, max_iter=10_000, warn=True):
    """Solve min_x E_i(x; theta) for the images ``idx`` to gradient norm ``tol``.

    Parameters
    ----------
    oracles : CountedOracles
        The counted problem; every gradient is one ``ll_grad`` per image.
    theta : torch.Tensor
        Regulariser parameters.
    x0 : torch.Tensor
        Warm starts (B, C, H, W).
    idx : torch.Tensor of int64
        Image indices (B,).
    tol : float or torch.Tensor
        Gradient-norm tolerance, scalar or per image (B,).
    max_iter : int
        Cap on gradient evaluations per image.
    warn : bool
        Warn when images stop at the cap (also reported in the result).

    Returns
    -------
    LowerLevelResult
    """
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter!r}")
    n = idx.numel()
    tol = _as_tolerance(tol, n, x0)
    big_l = oracles.lipschitz(theta)
    m = oracles.strong_convexity(theta)
    beta = (math.sqrt(big_l) - math.sqrt(m)) / (math.sqrt(big_l) + math.sqrt(m))

    # in place on the active images (x_out itself while all are active);
    # compacted when images stop: O(B) allocations per solve (docs/speed.md)
    x_out = x0.clone(memory_format=torch.contiguous_format)
    n_iter = torch.zeros(n, dtype=torch.int64, device=x0.device)
    grad_norm = torch.full((n,), float("inf"), dtype=x0.dtype, device=x0.device)
    converged = torch.zeros(n, dtype=torch.bool, device=x0.device)
    active = None  # positions of the active images; None: all of them
    y, idx_a, tol_a = x_out, idx, tol
    x_prev = x_out.clone()
    x_new = torch.empty_like(x0)
    work = _SolveBuffers(n, x_out)
    it = 0
    for it in range(max_iter):
        g = chunked_call(lambda z, i: oracles.ll_grad(theta, z, i), y, idx_a, work.grad)
        torch.linalg.vector_norm(g.flatten(1), dim=1, out=work.norm)
        torch.le(work.norm, tol_a, out=work.done)
        if it == max_iter - 1:
            break
        if bool(torch.any(work.done, out=work.flag)):
            # write out the images that stopped, then compact (at most B times)
            done = work.done
            stopped = None if active is None else y[done]  # else already in x_out
            rows, active, (y, g, x_prev, idx_a, tol_a) = compact(
                active, ~done, n, y, g, x_prev, idx_a, tol_a
            )
            fin = rows[done]
            n_iter[fin] = it + 1
            grad_norm[fin] = work.norm[done]
            converged[fin] = True
            if stopped is not None:
                x_out[fin] = stopped
            if not active.numel():
                break
            x_new = torch.empty_like(y)
            work = _SolveBuffers(active.numel(), y)
        # x_new = y - g / L; momentum = x_new - x_prev, dropped for an image
        # whose step goes uphill along its gradient (gradient restart,
        # O'Donoghue and Candes 2015); y = x_new + beta momentum
        torch.add(y, g, alpha=-1.0 / big_l, out=x_new)
        momentum = torch.sub(x_new, x_prev, out=x_prev)  # x_prev's last use
        nb = y.shape[0]
        torch.bmm(g.view(nb, 1, -1), momentum.view(nb, -1, 1), out=work.dot)
        torch.gt(work.dot.view(nb), 0, out=work.coef)
        work.coef.mul_(-beta).add_(beta)  # beta, or 0 when uphill
        torch.addcmul(x_new, work.coef.view(-1, *([1] * (y.ndim - 1))), momentum, out=y)
        x_prev, x_new = x_new, momentum
    # the images still active at the end (stopped by max_iter or converged
    # at the last evaluation)
    if active is None or active.numel():
        rows = _positions(active, n, x0.device)
        n_iter[rows] = it + 1
        grad_norm[rows] = work.norm
        converged[rows] = work.done
        if active is not None:
            x_out[rows] = y
    res = LowerLevelResult(x_out, n_iter, grad_norm, converged)
    if res.hit_cap and hasattr(oracles, "record_cap_hit"):
        oracles.record_cap_hit()  # read by the divergence rule (docs/limits.md)
    if warn and res.hit_cap:
        warnings.warn(
            f"lower-level solver hit max_iter={max_iter} on {res.hit_cap} of "
            f"{n} images (worst gradient norm {float(grad_norm.max()):.3g})",
            RuntimeWarning,
            stacklevel=2,
        )
    return res
