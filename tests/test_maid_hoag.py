"""MAID and HOAG, the adaptive full-batch baselines, and MAID's bounds (float64).

- the Lanczos estimates of ||J||, L_H, L_J against dense autograd values;
- the a-posteriori bound omega against the measured ||z - grad f|| (f and
  grad f solved to 1e-11) over random theta, and the bracket of f;
- MAID: every accepted step decreases f, certified directions are descent
  directions, the counted cost equals the work MAID reports (trial solves
  and constants included), the budget is respected;
- HOAG: the accuracy follows its schedule, the step follows its heuristic.
"""

import math

import pytest
import torch
from conftest import tiny_problem

from benchmark_utils.hypergradient import inexact_hypergradient
from benchmark_utils.maid_bounds import (
    estimate_constants,
    estimate_jac_norm,
    estimate_lip_hess,
    estimate_lip_jac,
    hypergradient_error_bound,
    lanczos_extreme,
    loss_bounds,
)
from tests.bench_helpers import solver_on_problem, tiny_bilevel

SEED = 3


def make_solver(name, problem, theta0, budget=10**9, **params):
    return solver_on_problem(name, problem, theta0, budget, SEED, **params)


def step(solver):
    solver.step()
    solver.n_outer += 1


def exact(problem, theta):
    """f(theta) and grad f(theta), lower level and adjoint solved to 1e-11."""
    o = problem.make_oracles()
    idx = torch.arange(o.n_images)
    hg = inexact_hypergradient(o, theta, idx, 1e-11, 1e-12)
    return float(hg.loss.mean()), hg.z


# -- the constants -------------------------------------------------------------
def test_lanczos_extreme_on_matrices():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(3, 12, 12, generator=gen, dtype=torch.float64)
    sym = a + a.transpose(1, 2)
    exact_max = torch.linalg.eigvalsh(sym).abs().amax(dim=1)
    v0 = torch.randn(3, 12, generator=gen, dtype=torch.float64)

    def apply(v):
        return torch.einsum("bij,bj->bi", sym, v)

    full = lanczos_extreme(apply, v0, 12)
    assert torch.allclose(full, exact_max, rtol=1e-10)
    for k in (2, 4, 8):
        assert bool((lanczos_extreme(apply, v0, k) <= exact_max * (1 + 1e-12)).all())


def _dense_constants(o, theta, x, q):
    """Exact ||J_stack||/sqrt(n), max_i ||M_i||/||q_i||, max_i ||N_i||/||q_i||."""
    reg = o._reg
    shape = x.shape[1:]
    jacs, lh, lj = [], [], []
    for i in range(x.shape[0]):
        xi, qi = x[i : i + 1], q[i : i + 1]

        def grad_theta(th, xi=xi):
            return reg.grad(xi, th).flatten()

        jacs.append(torch.autograd.functional.jacobian(grad_theta, theta))

        def hess_q(xx, qi=qi):
            xx = xx.view(1, *shape)
            g = reg.grad(xx, theta)
            (hq,) = torch.autograd.grad((g * qi).sum(), xx, create_graph=True)
            return hq.flatten()

        m_i = torch.autograd.functional.jacobian(hess_q, xi.flatten().clone())
        lh.append(float(torch.linalg.matrix_norm(m_i, 2)) / float(qi.norm()))

        def mixed(xx, qi=qi):
            th = theta.clone().requires_grad_(True)
            inner = (reg.grad(xx.view(1, *shape), th) * qi).sum()
            return torch.autograd.grad(inner, th, create_graph=True)[0]

        n_i = torch.autograd.functional.jacobian(mixed, xi.flatten().clone())
        lj.append(float(torch.linalg.matrix_norm(n_i, 2)) / float(qi.norm()))
    j_stack = torch.cat(jacs)
    jac = float(torch.linalg.matrix_norm(j_stack, 2)) / math.sqrt(x.shape[0])
    return jac, max(lh), max(lj)


def test_constants_match_dense_values_and_are_counted():
    o = tiny_problem(n_images=2, size=8)
    theta = o.init_theta(1)
    idx = torch.arange(2)
    hg = inexact_hypergradient(o, theta, idx, 1e-9, 1e-9)
    x, q = hg.lower.x, hg.adjoint.q
    jac, lh, lj = _dense_constants(o, theta, x, q)

    gen = torch.Generator().manual_seed(0)
    n_iter = 10
    est = {
        "jac": estimate_jac_norm(o, theta, x, idx, n_iter, gen=gen),
        "lh": estimate_lip_hess(o, theta, x, q, idx, n_iter, gen=gen),
        "lj": estimate_lip_jac(o, theta, x, q, idx, n_iter, gen=gen),
    }
    for key, ref in (("jac", jac), ("lh", lh), ("lj", lj)):
        # a lower estimate (Lanczos from below), up to finite-difference error,
        # and close after 10 steps
        assert est[key] <= ref * 1.005, key
        assert est[key] >= ref * 0.97, key

    # counted: 2 ll_grad (J) and 2 + 2 hvp (L_H, L_J) per image per step
    c0 = o.counters.as_dict()
    consts = estimate_constants(o, theta, x, q, idx, n_iter=3, safety=2.0)
    c1 = o.counters.as_dict()
    assert c1["ll_grad"] - c0["ll_grad"] == 2 * 3 * 2
    assert c1["hvp"] - c0["hvp"] == 4 * 3 * 2
    assert consts.cost == 6 * 3 * 2
    base = estimate_constants(o, theta, x, q, idx, n_iter=3)
    assert consts.jac_norm == pytest.approx(2 * base.jac_norm)
    assert consts.lip_hess == pytest.approx(2 * base.lip_hess)


# -- the a-posteriori bounds -----------------------------------------------------
@pytest.mark.parametrize("draw", range(4))
def test_omega_bounds_measured_error(draw):
    """||z - grad f|| <= omega and f in its bracket, at random theta."""
    problem, theta0 = tiny_bilevel()
    o = problem.make_oracles()
    idx = torch.arange(o.n_images)
    gen = torch.Generator().manual_seed(100 + draw)
    noise = torch.randn(theta0.shape, generator=gen, dtype=torch.float64)
    theta = o.project(theta0 + 0.3 * draw * noise)
    f_star, grad_f = exact(problem, theta)
    m, lip_g = o.strong_convexity(theta), o.ul_lipschitz
    sub = idx[:2]  # constants on a subset, as MAID does
    for eps, delta in ((1e-1, 1e-3), (1e-2, 1e-4), (1e-3, 1e-6)):
        hg = inexact_hypergradient(o, theta, idx, eps, delta)
        consts = estimate_constants(
            o, theta, hg.lower.x[sub], hg.adjoint.q[sub], sub, n_iter=5, seed=draw
        )
        omega = hypergradient_error_bound(
            hg.lower.grad_norm, hg.grad_loss_norm, hg.adjoint.res_norm, m, lip_g, consts
        )
        err = float((hg.z - grad_f).norm())
        assert err <= omega, (eps, delta, err, omega)
        low, up = loss_bounds(hg.loss, hg.lower.grad_norm, hg.grad_loss_norm, m, lip_g)
        assert low <= f_star <= up


def test_omega_is_zero_only_for_exact_solves():
    """omega scales with the accuracies: it vanishes with eps and delta."""
    problem, theta0 = tiny_bilevel()
    o = problem.make_oracles()
    idx = torch.arange(o.n_images)
    hg = inexact_hypergradient(o, theta0, idx, 1e-3, 1e-5)
    consts = estimate_constants(o, theta0, hg.lower.x, hg.adjoint.q, idx, n_iter=3)
    args = (hg.grad_loss_norm, 1.0, o.ul_lipschitz, consts)
    gn, rn = hg.lower.grad_norm, hg.adjoint.res_norm
    zero = torch.zeros_like(gn)
    assert hypergradient_error_bound(zero, hg.grad_loss_norm, zero, *args[1:]) == 0
    full = hypergradient_error_bound(gn, hg.grad_loss_norm, rn, *args[1:])
    half = hypergradient_error_bound(gn / 2, hg.grad_loss_norm, rn / 2, *args[1:])
    assert 0 < half < full
    # the delta term alone is ||J||_rms * rms(delta_i) / m
    only_delta = hypergradient_error_bound(zero, hg.grad_loss_norm, rn, *args[1:])
    expect = consts.jac_norm * float(rn.pow(2).mean().sqrt())
    assert only_delta == pytest.approx(expect, rel=1e-12)


# -- MAID ----------------------------------------------------------------------------
def test_maid_accepted_steps_decrease_f_and_directions_descend():
    problem, theta0 = tiny_bilevel()
    solver = make_solver("MAID", problem, theta0, step_size=100.0)
    n_accepted = n_certified = 0
    for _ in range(8):
        theta_old = solver.theta.clone()
        f_old, grad_f = exact(problem, theta_old)
        step(solver)
        info = solver.info()
        z = solver.z
        if info["certified"]:
            n_certified += 1
            d = theta_old - solver.oracles.project(theta_old - z)
            assert float(z @ grad_f) > 0
            assert float(d @ grad_f) >= solver.eta * float(d @ d)
            assert info["omega_ratio"] <= 1 - solver.eta
        if info["accepted"]:
            n_accepted += 1
            f_new, _ = exact(problem, solver.theta)
            assert f_new < f_old
        else:
            assert torch.equal(solver.theta, theta_old)
    assert n_accepted >= 6 and n_certified >= 6


def test_maid_cost_equals_reported_work_with_trials():
    """Cost = the lower-level + CG iterations MAID reports, trials included."""
    problem, theta0 = tiny_bilevel()
    # a large first step forces rejected trials
    solver = make_solver("MAID", problem, theta0, step_size=3000.0, max_backtracks=3)
    n_backtracks = []
    for _ in range(6):
        step(solver)
        n_backtracks.append(solver.info()["n_backtracks"])
    log = solver.work_log
    c = solver.oracles.counters
    ll = sum(e["ll"] + e["ll_grad"] for e in log)
    cg = sum(e["cg"] + e["hvp"] for e in log)
    assert c.ll_grad == ll == solver.ll_iters + sum(e["ll_grad"] for e in log)
    assert c.hvp == cg == solver.cg_iters + sum(e["hvp"] for e in log)
    assert c.cost == solver.ll_iters + solver.cg_iters + solver.const_cost
    trials = [e for e in log if e["kind"] == "trial"]
    assert len(trials) == sum(n_backtracks)
    assert max(n_backtracks) > 1  # some trial was rejected, and counted
    assert all(e["ll"] > 0 for e in trials)
    assert solver.const_cost > 0
    # per image: every image paid for every solve (full batch)
    per = c.per_image["ll_grad"] + c.per_image["hvp"]
    assert int(per.sum()) == c.cost and bool((per > 0).all())


def test_maid_without_descent_test_skips_the_constants():
    problem, theta0 = tiny_bilevel()
    solver = make_solver("MAID", problem, theta0, descent_test=False)
    f0, _ = exact(problem, theta0)
    for _ in range(4):
        step(solver)
    assert solver.const_cost == 0 and solver.constants is None
    assert not any(e["kind"] == "constants" for e in solver.work_log)
    assert math.isnan(solver.info()["omega_ratio"])
    assert solver.oracles.counters.cost == solver.ll_iters + solver.cg_iters
    assert exact(problem, solver.theta)[0] < f0


def test_maid_stops_at_the_budget():
    problem, theta0 = tiny_bilevel()
    budget = 300
    solver = make_solver("MAID", problem, theta0, budget=budget, step_size=3000.0)
    solver.checkpoints = [budget]
    calls = {"n": 0}

    def callback():
        calls["n"] += 1
        return calls["n"] <= 3

    solver.run(callback)
    log = solver.work_log
    spent = [e["ll"] + e["cg"] + e["ll_grad"] + e["hvp"] for e in log]
    cumulative = torch.tensor(spent).cumsum(0)
    # the oracles cut the piece that reaches the budget within one call on
    # the 4 images (docs/limits.md); the cut piece is not in the work log
    cost = solver.oracles.counters.cost
    assert budget <= cost < budget + problem.n_images
    assert int(cumulative[-1]) <= cost
    assert solver.status == "budget"


def test_maid_rejects_bad_parameters():
    problem, theta0 = tiny_bilevel()
    with pytest.raises(ValueError, match="rho="):
        make_solver("MAID", problem, theta0, rho=1.5)
    with pytest.raises(ValueError, match="eta="):
        make_solver("MAID", problem, theta0, eta=0.0)


# -- HOAG ------------------------------------------------------------------------------
@pytest.mark.parametrize("schedule", ["geometric", "quadratic", "cubic"])
def test_hoag_accuracy_follows_its_schedule(schedule):
    problem, theta0 = tiny_bilevel()
    eps0, ratio = 1e-2, 0.5
    solver = make_solver(
        "HOAG",
        problem,
        theta0,
        eps0=eps0,
        tolerance_decrease=schedule,
        delta_ratio=ratio,
        step_size=100.0,
    )
    expect = {
        "geometric": lambda k: eps0 * 0.9**k,
        "quadratic": lambda k: eps0 / (k + 1) ** 2,
        "cubic": lambda k: eps0 / (k + 1) ** 3,
    }[schedule]
    for k in range(5):
        step(solver)
        info = solver.info()
        assert info["accuracy"] == pytest.approx(expect(k), rel=1e-12)
        assert info["delta"] == pytest.approx(ratio * expect(k), rel=1e-12)
        assert solver.max_grad_norm <= expect(k)
        assert solver.max_rel_residual <= ratio * expect(k)
    c = solver.oracles.counters
    assert c.cost == solver.ll_iters + solver.cg_iters
    assert c.jvp == 5 * problem.n_images  # one hypergradient per step, full batch


def test_hoag_step_size_heuristic():
    """alpha grows by 1/0.95 on sufficient decrease, halves when f goes up."""
    problem, theta0 = tiny_bilevel()
    solver = make_solver("HOAG", problem, theta0, step_size=1000.0)
    history = []
    for _ in range(8):
        prev = solver.prev
        alpha_before = solver.alpha
        step(solver)
        g, c, alpha, incr2 = solver.prev
        if prev is None:
            assert alpha == alpha_before
            continue
        g_old, c_old, alpha_old, incr2_old = prev
        if g - c <= g_old + c_old - incr2_old / (2 * alpha_old):
            assert alpha == pytest.approx(alpha_before / 0.95)
        elif g > g_old:
            assert alpha == pytest.approx(alpha_before / 2)
        else:
            assert alpha == alpha_before
        history.append(solver.step_change)
    # the too-large first step increased f and was halved; later steps grew
    assert history[0] == -1 and 1 in history
