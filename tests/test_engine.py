"""Lower-level solver, conjugate gradient, hypergradient, counters and limits
(float64), and the cache digest of benchmark_utils."""

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.optimize
import torch

from benchmark_utils.cache_key import UTILS_DIGEST, utils_digest
from benchmark_utils.hypergradient import (
    conjugate_gradient,
    inexact_hypergradient,
    linear_system_steps,
    lower_level_steps,
    neumann_inverse,
)
from benchmark_utils.lower_level import batch_norm, solve_lower_level
from benchmark_utils.memory import ImageMemory
from benchmark_utils.oracles import LimitReached
from tests.conftest import energy, tiny_problem


def _perturbed_theta(oracles, seed=0):
    theta = oracles.init_theta(seed)
    gen = torch.Generator().manual_seed(seed + 10)
    noise = torch.randn(theta.shape, generator=gen, dtype=theta.dtype)
    return oracles.project(theta + 0.1 * noise)


def _dense_hessian(oracles, theta, x, i):
    """Hess E_i(x) as a dense matrix, column by column (test helper)."""
    d = x[0].numel()
    eye = torch.eye(d, dtype=x.dtype).view(d, *x.shape[1:])
    idx = torch.full((d,), i, dtype=torch.int64)
    hv = oracles.hvp(theta, x.expand(d, *x.shape[1:]), eye, idx)
    return hv.reshape(d, d)


def test_grad_matches_finite_differences(any_problem):
    o = any_problem
    theta = _perturbed_theta(o)
    idx = torch.arange(o.n_images)
    gen = torch.Generator().manual_seed(5)
    x = torch.rand(o.n_images, *o.image_shape, generator=gen, dtype=torch.float64)
    d = torch.randn(x.shape, generator=gen, dtype=torch.float64)
    t = 1e-6
    fd = (energy(o, theta, x + t * d, idx) - energy(o, theta, x - t * d, idx)) / (2 * t)
    an = (o.ll_grad(theta, x, idx) * d).flatten(1).sum(1)
    assert float(((an - fd) / fd).abs().max()) < 1e-6
    hv = o.hvp(theta, x, d, idx)
    fdh = (o.ll_grad(theta, x + t * d, idx) - o.ll_grad(theta, x - t * d, idx)) / (
        2 * t
    )
    assert float((hv - fdh).abs().max() / fdh.abs().max()) < 1e-5


def test_lower_level_matches_lbfgs(any_problem):
    o = any_problem
    theta = _perturbed_theta(o)
    idx = torch.arange(o.n_images)
    res = solve_lower_level(o, theta, o.initial_x(idx), idx, tol=1e-9)
    assert bool(res.converged.all())
    assert bool((res.grad_norm <= 1e-9).all())
    # certified by an independent gradient evaluation at the returned point
    assert float(batch_norm(o.ll_grad(theta, res.x, idx)).max()) <= 1e-9
    shape = o.image_shape
    for i in range(o.n_images):
        ii = torch.tensor([i])

        def fun(v, ii=ii):
            x = torch.tensor(v, dtype=torch.float64).view(1, *shape)
            val = energy(o, theta, x, ii)
            g = o.ll_grad(theta, x, ii)
            return float(val), g.flatten().numpy()

        sol = scipy.optimize.minimize(
            fun,
            o.initial_x(ii).flatten().numpy(),
            jac=True,
            method="L-BFGS-B",
            options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 5000},
        )
        err = np.abs(sol.x - res.x[i].flatten().numpy()).max()
        m = o.strong_convexity(theta)
        assert err <= 1e-6 / m


def test_lower_level_respects_per_image_tolerance_and_masks(denoising_problem):
    o = denoising_problem
    theta = _perturbed_theta(o)
    idx = torch.arange(o.n_images)
    tol = torch.tensor([1e-2, 1e-5, 1e-8], dtype=torch.float64)
    before = o.counters.per_image["ll_grad"].clone()
    res = solve_lower_level(o, theta, o.initial_x(idx), idx, tol=tol)
    assert bool((res.grad_norm <= tol).all())
    spent = o.counters.per_image["ll_grad"] - before
    # converged images stop costing: the per-image counts equal the iterations
    assert torch.equal(spent, res.n_iter)
    assert res.n_iter[0] < res.n_iter[1] < res.n_iter[2]
    assert o.counters.ll_grad == int(res.n_iter.sum())


def test_lower_level_warm_start_cuts_iterations(denoising_problem):
    o = denoising_problem
    theta = _perturbed_theta(o)
    idx = torch.arange(o.n_images)
    cold = solve_lower_level(o, theta, o.initial_x(idx), idx, tol=1e-8)
    theta2 = o.project(theta + 1e-3 * torch.ones_like(theta))
    warm = solve_lower_level(o, theta2, cold.x, idx, tol=1e-8)
    cold2 = solve_lower_level(o, theta2, o.initial_x(idx), idx, tol=1e-8)
    assert int(warm.n_iter.sum()) < int(cold2.n_iter.sum())
    # warm start at the exact solution costs one gradient per image
    again = solve_lower_level(o, theta2, warm.x, idx, tol=1e-8)
    assert torch.equal(again.n_iter, torch.ones_like(again.n_iter))


def test_lower_level_reports_iteration_cap(denoising_problem):
    o = denoising_problem
    theta = _perturbed_theta(o)
    idx = torch.arange(o.n_images)
    with pytest.warns(RuntimeWarning, match="max_iter=3"):
        res = solve_lower_level(o, theta, o.initial_x(idx), idx, 1e-12, max_iter=3)
    assert res.hit_cap == o.n_images
    assert torch.equal(res.n_iter, torch.full_like(res.n_iter, 3))
    assert o.counters.ll_grad == 3 * o.n_images


@pytest.mark.parametrize("warm", [False, True])
def test_conjugate_gradient_matches_dense_solve(any_problem, warm):
    o = any_problem
    theta = _perturbed_theta(o)
    idx = torch.arange(o.n_images)
    x = solve_lower_level(o, theta, o.initial_x(idx), idx, 1e-8).x
    gen = torch.Generator().manual_seed(2)
    b = torch.randn(x.shape, generator=gen, dtype=torch.float64)
    q0 = None
    if warm:
        q0 = torch.zeros_like(b)
        q0[1] = torch.randn(b[1].shape, generator=gen, dtype=torch.float64)
    hess = o.hessian(theta, x, idx)
    hvp_before = o.counters.hvp
    res = conjugate_gradient(hess, b, tol=1e-11, q0=q0)
    assert bool(res.converged.all())
    assert o.counters.hvp - hvp_before == int(res.n_iter.sum())
    for i in range(o.n_images):
        dense = _dense_hessian(o, theta, x[i : i + 1], i)
        q = torch.linalg.solve(dense, b[i].flatten())
        assert float((q - res.q[i].flatten()).abs().max()) < 1e-8 * float(q.abs().max())


def test_conjugate_gradient_warm_start_at_solution_is_cheap(denoising_problem):
    o = denoising_problem
    theta = _perturbed_theta(o)
    idx = torch.arange(o.n_images)
    x = o.initial_x(idx)
    b = torch.ones_like(x)
    first = conjugate_gradient(o.hessian(theta, x, idx), b, 1e-10)
    again = conjugate_gradient(o.hessian(theta, x, idx), b, 1e-8, q0=first.q)
    # only the initial residual product is paid
    assert torch.equal(again.n_iter, torch.ones_like(again.n_iter))


def _exact_loss(o, theta, idx):
    res = solve_lower_level(o, theta, o.initial_x(idx), idx, 1e-11, max_iter=50_000)
    return float(((res.x - o.x_clean[idx]) ** 2).flatten(1).sum(1).mean()) / (
        o.n_pixels
    )


def test_hypergradient_matches_finite_differences(any_problem):
    o = any_problem
    theta = _perturbed_theta(o)
    idx = torch.arange(o.n_images)
    hg = inexact_hypergradient(o, theta, idx, 1e-10, 1e-10, per_image=True)
    assert torch.allclose(hg.z, hg.z_per_image.mean(0))
    gen = torch.Generator().manual_seed(4)
    for _ in range(2):
        d = o.project(torch.randn(theta.shape, generator=gen, dtype=torch.float64))
        t = 1e-5
        f_plus = _exact_loss(o, theta + t * d, idx)
        fd = (f_plus - _exact_loss(o, theta - t * d, idx)) / (2 * t)
        an = float(hg.z @ d)
        assert abs(an - fd) <= 1e-4 * abs(fd)
    # the per-image hypergradient of image 0 is that of a batch of one
    one = inexact_hypergradient(o, theta, idx[:1], 1e-10, 1e-10)
    assert torch.allclose(one.z, hg.z_per_image[0], rtol=1e-6, atol=1e-12)


def test_counters_equal_hand_counts(denoising_problem):
    o = denoising_problem
    theta = _perturbed_theta(o)
    x = o.initial_x(torch.arange(3))
    i01, i2 = torch.tensor([0, 1]), torch.tensor([2])
    o.ll_grad(theta, x[:2], i01)  # 2 ll_grad
    o.ll_grad(theta, x[2:], i2)  # 1 ll_grad
    hess = o.hessian(theta, x[:2], i01)  # 2 hess_build (work, not cost)
    hess(x[:2])  # 2 hvp
    hess(x[1:2], torch.tensor([1]))  # 1 hvp on image 1
    o.hvp(theta, x[2:], x[2:], i2)  # 1 hess_build, 1 hvp
    o.jvp(theta, x[:2], x[:2], i01)  # 2 jvp
    o.jvp(theta, x[2:], x[2:], i2, per_image=True)  # 1 jvp, priced per image
    o.ul_grad(x, torch.arange(3))  # 3 ul_grad
    o.lipschitz(theta)  # filters only: not counted
    w = o.work_weights
    work = (
        3 * w["ll_grad"]
        + 4 * w["hvp"]
        + 3 * w["hess_build"]
        + 2 * w["jvp"]
        + w["jvp_per_image"]
        + 3 * w["ul_grad"]
    )
    assert o.counters.as_dict() == {
        "ll_grad": 3,
        "hvp": 4,
        "jvp": 3,
        "ul_grad": 3,
        "hess_build": 3,
        "cost": 7,
        "work": pytest.approx(work, rel=1e-12),
    }
    assert w["ll_grad"] == 1.0 and all(v > 0 for v in w.values())
    assert o.counters.per_image["hvp"].tolist() == [1, 2, 1]
    assert o.counters.per_image["ll_grad"].tolist() == [1, 1, 1]
    # a hypergradient costs exactly its reported iterations
    before = o.counters.as_dict()
    hg = inexact_hypergradient(o, theta, torch.arange(3), 1e-6, 1e-6)
    spent = {k: v - before[k] for k, v in o.counters.as_dict().items()}
    assert spent["ll_grad"] == int(hg.lower.n_iter.sum())
    assert spent["hvp"] == int(hg.adjoint.n_iter.sum())
    assert spent["jvp"] == 3 and spent["ul_grad"] == 3
    assert spent["hess_build"] == 3  # one Hessian built per image for CG


def test_hypergradient_memory_warm_starts(denoising_problem):
    o = denoising_problem
    theta = _perturbed_theta(o)
    mem = ImageMemory(o)
    idx = torch.tensor([0, 2])
    first = inexact_hypergradient(o, theta, idx, 1e-7, 1e-7, memory=mem)
    assert torch.equal(mem.x[idx], first.lower.x)
    assert torch.equal(mem.q[idx], first.adjoint.q)
    # untouched image keeps its initial warm start
    assert torch.equal(mem.x[1], o.initial_x(torch.tensor([1]))[0])
    cost = o.counters.cost
    inexact_hypergradient(o, theta, idx, 1e-7, 1e-7, memory=mem)
    # at the same theta: one gradient and one residual product per image
    assert o.counters.cost - cost == 2 * 2


def test_fixed_step_pieces(denoising_problem):
    o = denoising_problem
    theta = _perturbed_theta(o)
    idx = torch.arange(o.n_images)
    exact = solve_lower_level(o, theta, o.initial_x(idx), idx, 1e-11).x
    before = o.counters.ll_grad
    x = lower_level_steps(o, theta, o.initial_x(idx), idx, n_steps=1500)
    assert o.counters.ll_grad - before == 1500 * o.n_images
    assert float((x - exact).abs().max()) < 1e-6
    b = torch.ones_like(exact)
    hess = o.hessian(theta, exact, idx)
    q = conjugate_gradient(hess, b, 1e-12).q
    eta = 1.0 / o.lipschitz(theta)
    before = o.counters.hvp
    v = neumann_inverse(hess, b, n_terms=1500, eta=eta)
    assert o.counters.hvp - before == 1500 * o.n_images
    assert float((v - q).abs().max()) < 1e-6 * float(q.abs().max())
    before = o.counters.hvp
    v2 = linear_system_steps(hess, torch.zeros_like(b), b, n_steps=1500, eta=eta)
    assert o.counters.hvp - before == 1500 * o.n_images
    assert float((v2 - q).abs().max()) < 1e-6 * float(q.abs().max())
    # Neumann with Q terms equals Q linear-system steps from zero
    assert torch.allclose(
        neumann_inverse(hess, b, 5, eta), linear_system_steps(hess, 0 * b, b, 6, eta)
    )


def test_missing_strong_convexity_is_refused():
    with pytest.raises(ValueError, match="mu > 0"):
        tiny_problem("inpainting", mu=0.0, size=12)


# -- limits: cost cap and deadline (docs/limits.md) --------------------------
def test_cost_cap_stops_lower_level_within_one_iteration(denoising_problem):
    o = denoising_problem
    theta = _perturbed_theta(o)
    idx = torch.arange(o.n_images)
    o.set_limits(cost_cap=50)
    # a tolerance no solve reaches: without the cap it would run 10**6 steps
    with pytest.raises(LimitReached) as info:
        solve_lower_level(o, theta, o.initial_x(idx), idx, 1e-300, max_iter=10**6)
    assert info.value.kind == "budget"
    # refused at the first call starting at >= 50; one call costs n_images
    assert 50 <= o.counters.cost < 50 + o.n_images
    # the cap holds for Hessian products (Neumann, CG) too
    hess = o.hessian(theta, o.initial_x(idx), idx)
    with pytest.raises(LimitReached):
        neumann_inverse(hess, torch.ones_like(o.initial_x(idx)), 10**6, 0.1)
    assert o.counters.hvp == 0
    # free calls (no cost) are not refused by the cap
    o.ul_grad(o.initial_x(idx), idx)
    o.jvp(theta, o.initial_x(idx), o.initial_x(idx), idx)
    o.set_limits()
    o.ll_grad(theta, o.initial_x(idx), idx)  # limits lifted


def test_deadline_stops_a_long_inner_loop(denoising_problem):
    o = denoising_problem
    theta = _perturbed_theta(o)
    idx = torch.arange(o.n_images)
    o.set_limits(deadline=time.time() + 0.3)
    start = time.time()
    with pytest.raises(LimitReached) as info:
        lower_level_steps(o, theta, o.initial_x(idx), idx, n_steps=10**8)
    elapsed = time.time() - start
    assert info.value.kind == "timeout"
    assert 0.3 <= elapsed < 2.0
    with pytest.raises(LimitReached):  # every counted call checks it
        o.ul_grad(o.initial_x(idx), idx)


def test_inner_solves_at_their_cap_are_recorded(denoising_problem):
    o = denoising_problem
    theta = _perturbed_theta(o)
    idx = torch.arange(o.n_images)
    x0 = o.initial_x(idx)
    with pytest.warns(RuntimeWarning, match="max_iter"):
        solve_lower_level(o, theta, x0, idx, 1e-300, max_iter=3)
    assert o.cap_hits == 1
    solve_lower_level(o, theta, x0, idx, 1e-1)  # converges: not a cap hit
    assert o.cap_hits == 1
    hess = o.hessian(theta, x0, idx)
    # not a constant right-hand side: FoE's Hessian maps constants to
    # themselves (the filters are zero-mean), so CG would solve it exactly
    b = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0)).to(x0)
    with pytest.warns(RuntimeWarning, match="max_iter"):
        conjugate_gradient(hess, b, 1e-300, max_iter=2)
    assert o.cap_hits == 2


# -- cache digest -------------------------------------------------------------
def test_digest_ignores_lock_hidden_and_unreadable_files(tmp_path):
    root = Path(__file__).resolve().parents[1] / "benchmark_utils"
    copy = tmp_path / "benchmark_utils"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("__pycache__", ".*"))
    clean = utils_digest(copy)
    assert clean == UTILS_DIGEST  # same source files, same digest
    # an Emacs lock file: a dangling symlink named .#<module>.py
    (copy / ".#sampling.py").symlink_to("root@host.1234:1700000000")
    (copy / "regularisers" / ".#foe.py").symlink_to("nowhere")
    (copy / ".hidden.py").write_text("x = 1\n")
    (copy / "stale.py").mkdir()  # matches *.py but is not a file
    assert utils_digest(copy) == clean
    # the digest still sees a real edit
    with open(copy / "sampling.py", "a") as f:
        f.write("\n# edited\n")
    assert utils_digest(copy) != clean


def test_digest_mismatch_fails_only_its_cell(monkeypatch):
    from benchopt.runner import FailedRun, run_one_to_cvg

    from tests.bench_helpers import _context, get_dataset, get_objective, get_solver

    dataset = get_dataset("denoising", n_train=2, n_test=1, patch_size=16)
    objective = get_objective(budget=40, n_checkpoints=1, n_filters=2)
    solver = get_solver("ISGD", batch_size=1)
    # unpickling a state from another checkout must not raise (that breaks
    # a whole -j N pool) ...
    objective.__setstate__({"benchmark_utils": "0" * 32})
    ctx = _context(0, 0, dataset, objective, solver)
    meta = {"dataset_name": "d", "objective_name": "o", "solver_name": "s"}
    # ... the cell fails instead, through benchopt's per-cell error path
    with pytest.raises(FailedRun) as failed:
        run_one_to_cvg(
            benchmark=None,
            dataset=dataset,
            objective=objective,
            solver=solver,
            repetition=0,
            meta=meta,
            timeout=None,
            max_runs=2,
            terminal=None,
            run_context=ctx,
        )
    assert failed.value.status == "error"
    objective.__setstate__({"benchmark_utils": UTILS_DIGEST})
    assert objective.skip() == (False, None)
