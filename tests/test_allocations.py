"""Buffers and cache-sized chunks of the hot loops (``docs/speed.md``).

- A lower-level solve or a conjugate-gradient solve of N iterations makes a
  number of new tensors independent of N outside the oracle calls (counted
  with a ``TorchDispatchMode`` that sees every operator: an output whose
  storage is none of the inputs' is a new allocation).
- The chunked loops give bitwise the results of the unchunked ones.
"""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from benchmark_utils import lower_level
from benchmark_utils.forward import make_forward
from benchmark_utils.hypergradient import (
    conjugate_gradient,
    linear_system_steps,
    lower_level_steps,
    neumann_inverse,
)
from benchmark_utils.lower_level import solve_lower_level
from benchmark_utils.oracles import CountedOracles
from benchmark_utils.regularisers import make_regulariser
from tests.conftest import tiny_problem


class AllocationCounter(TorchDispatchMode):
    """Counts operator outputs with new storage while ``counting`` is set."""

    def __init__(self):
        super().__init__()
        self.count = 0
        self.counting = True

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if self.counting:
            seen = {
                t.untyped_storage().data_ptr()
                for t in tree_flatten((args, kwargs))[0]
                if isinstance(t, torch.Tensor)
            }
            for t in tree_flatten(out)[0]:
                if isinstance(t, torch.Tensor):
                    self.count += t.untyped_storage().data_ptr() not in seen
        return out


def _paused(counter, fn):
    """``fn`` with counting off: the oracles' own work is not the loop's."""

    def call(*args, **kwargs):
        counter.counting = False
        try:
            return fn(*args, **kwargs)
        finally:
            counter.counting = True

    return call


def _lower_level_allocations(n_iter):
    # a strong prior (FoE's default start is weak enough for a float64 solve
    # to reach a zero gradient in a dozen steps, which would stop it early)
    o = tiny_problem(
        n_images=3, reg_kwargs={"init_weight": 0.1, "init_smoothing": 0.05}
    )
    theta = o.init_theta(0)
    assert theta.dtype == torch.float64
    idx = torch.arange(3)
    x0 = o.initial_x(idx)
    o.lipschitz(theta)  # cached bound: computed outside the count
    counter = AllocationCounter()
    o.ll_grad = _paused(counter, o.ll_grad)
    with counter:
        res = solve_lower_level(o, theta, x0, idx, 1e-30, max_iter=n_iter, warn=False)
    assert int(res.n_iter.min()) == n_iter
    return counter.count


@pytest.mark.parametrize("chunked", [False, True])
def test_lower_level_allocations_do_not_grow_with_iterations(monkeypatch, chunked):
    if chunked:  # one image per chunk (the images are 12 x 12)
        monkeypatch.setattr(lower_level, "CHUNK_PIXELS", 144)
    _lower_level_allocations(1)  # module-level caches filled once
    few, many = _lower_level_allocations(3), _lower_level_allocations(40)
    assert few == many
    assert many <= 40  # the set-up: buffers, tolerances, the bound


def _cg_allocations(n_iter):
    # a strong prior (FoE's default start is weak enough for a float64 solve
    # to reach a zero gradient in a dozen steps, which would stop it early)
    o = tiny_problem(
        n_images=3, reg_kwargs={"init_weight": 0.1, "init_smoothing": 0.05}
    )
    theta = o.init_theta(0)
    assert theta.dtype == torch.float64
    idx = torch.arange(3)
    x = o.initial_x(idx)
    b = torch.randn(x.shape, generator=torch.Generator().manual_seed(0), dtype=x.dtype)
    hess = o.hessian(theta, x, idx)
    counter = AllocationCounter()
    hessian = _paused(counter, hess)
    hessian.oracles = o
    with counter:
        res = conjugate_gradient(hessian, b, 1e-300, max_iter=n_iter, warn=False)
    assert int(res.n_iter.min()) == n_iter
    return counter.count


@pytest.mark.parametrize("chunked", [False, True])
def test_conjugate_gradient_allocations_do_not_grow_with_iterations(
    monkeypatch, chunked
):
    if chunked:
        monkeypatch.setattr(lower_level, "CHUNK_PIXELS", 144)
    _cg_allocations(1)  # module-level caches filled once
    few, many = _cg_allocations(3), _cg_allocations(30)
    assert few == many
    assert many <= 40  # the set-up: buffers, tolerances, the bound


def test_counter_sees_allocations():
    counter = AllocationCounter()
    x = torch.zeros(4)
    with counter:
        y = x + 1
        y.add_(1)
        torch.add(x, y, out=y)
    assert counter.count == 1


# -- chunks -----------------------------------------------------------------
def _float32_problem(n_images=5, size=24, channels=1):
    gen = torch.Generator().manual_seed(0)
    shape = (channels, size, size)
    x_clean = torch.rand(n_images, *shape, generator=gen)
    fwd = make_forward("denoising", image_shape=shape, noise_sigma=0.1, seed=0)
    y = fwd.measure(x_clean, seed=0)
    reg = make_regulariser("foe", channels, n_filters=4, kernel_size=5)
    return CountedOracles(reg, fwd, x_clean, y, mu=1e-3)


def _run_all(o, theta, idx):
    x0 = o.initial_x(idx)
    tol = torch.tensor([1e-1, 1e-2, 1e-3, 1e-4, 1e-5], dtype=x0.dtype)[: idx.numel()]
    res = solve_lower_level(o, theta, x0, idx, tol, max_iter=200, warn=False)
    b = torch.randn(x0.shape, generator=torch.Generator().manual_seed(1))
    b = b.to(x0.dtype)
    hess = o.hessian(theta, res.x, idx)
    cg = conjugate_gradient(hess, b, tol, max_iter=60, warn=False)
    steps = lower_level_steps(o, theta, x0, idx, 4)
    neu = neumann_inverse(hess, b, 5, 0.5 / o.lipschitz(theta))
    lin = linear_system_steps(hess, cg.q, b, 3, 0.5 / o.lipschitz(theta))
    return (
        res.x,
        res.n_iter,
        res.grad_norm,
        cg.q,
        cg.n_iter,
        cg.res_norm,
        steps,
        neu,
        lin,
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_chunked_loops_equal_unchunked_bitwise(monkeypatch, dtype):
    o = _float32_problem()
    if dtype == torch.float64:
        o = tiny_problem(n_images=5, size=16)
    theta = o.project(o.init_theta(0))
    idx = torch.arange(5)
    whole = _run_all(o, theta, idx)
    side = o.x_clean.shape[-1]
    monkeypatch.setattr(lower_level, "CHUNK_PIXELS", 2 * side * side)  # 2 images
    assert lower_level.chunk_size(o.x_clean) == 2
    chunked = _run_all(o, theta, idx)
    for a, b in zip(whole, chunked, strict=True):
        assert torch.equal(a, b)


def test_chunk_size_follows_the_image_size():
    assert lower_level.chunk_size(torch.zeros(1, 1, 256, 256)) == 1
    assert lower_level.chunk_size(torch.zeros(1, 3, 128, 128)) == 4
    assert lower_level.chunk_size(torch.zeros(1, 1, 32, 32)) == 64
