"""MAID and HOAG, the adaptive full-batch baselines, and MAID's bounds (float64).

- the Lanczos estimates of ||J||, L_H, L_J against dense autograd values;
- the a-posteriori bound omega against the measured ||z - grad f|| (f and
  grad f solved to 1e-11) over random theta, and the bracket of f;
- MAID: every accepted step decreases f, certified directions are descent
  directions, the oracle calls match hand counts from the reported
  backtracks and tightenings (trial solves and constants included), the
  budget is respected, a run that accepts no step is marked;
- HOAG: the solves meet the scheduled accuracies (hand-computed values),
  the step size follows its heuristic on measured f;
- the ranges of the step sizes and accuracies.
"""

import math

import pytest
import torch
from conftest import tiny_problem

from benchmark_utils.hypergradient import inexact_hypergradient
from benchmark_utils.lower_level import batch_norm
from benchmark_utils.maid_bounds import (
    _largest_abs_eigenvalue,
    estimate_constants,
    estimate_jac_norm,
    estimate_lip_hess,
    estimate_lip_jac,
    hypergradient_error_bound,
    lanczos_extreme,
    loss_bounds,
)
from tests.bench_helpers import assert_refused, solver_on_problem, tiny_bilevel

SEED = 3


def make_solver(name, problem, theta0, budget=10**9, **params):
    return solver_on_problem(name, problem, theta0, budget, SEED, **params)


def step(solver):
    solver.step()
    solver.n_outer += 1


class OracleSpy:
    """Records every counted oracle call of an oracles object.

    ``calls`` holds (name, batch size, cost after the call).
    """

    def __init__(self, oracles):
        self.calls = []
        counters = oracles.counters
        add = counters.add

        def spy_add(name, idx, priced_as=None):
            add(name, idx, priced_as)
            self.calls.append((name, int(idx.numel()), counters.cost))

        counters.add = spy_add

    def count(self, name):
        """Images passed to oracle ``name``, summed over its calls."""
        return sum(b for n, b, _ in self.calls if n == name)


def spy_hypergradients(solver):
    """The list, growing, of the hypergradients a full-batch solver computes."""
    seen = []
    compute = solver.hypergradient

    def spied(*args, **kwargs):
        seen.append(compute(*args, **kwargs))
        return seen[-1]

    solver.hypergradient = spied
    return seen


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


def _batched(mats):
    def apply(v):
        return torch.einsum("bij,bj->bi", mats, v)

    return apply


def test_lanczos_stops_when_the_krylov_space_is_exhausted(recwarn):
    """More steps than dimensions (theta of Tikhonov has 2 entries): exact."""
    gen = torch.Generator().manual_seed(1)
    a = torch.randn(2, 2, 2, generator=gen, dtype=torch.float64)
    sym = a @ a.transpose(1, 2)
    exact_max = torch.linalg.eigvalsh(sym).abs().amax(dim=1)
    v0 = torch.randn(2, 2, generator=gen, dtype=torch.float64)
    est = lanczos_extreme(_batched(sym), v0, 6)
    torch.testing.assert_close(est, exact_max, rtol=1e-12, atol=0)
    # a zero operator (L_H of a quadratic regulariser) gives exactly 0
    zero = lanczos_extreme(lambda v: 0 * v, v0, 5)
    assert torch.equal(zero, torch.zeros(2, dtype=torch.float64))
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_lanczos_falls_back_where_eigh_fails():
    # the tridiagonal matrix of the crash (README Tikhonov, MAID, denoising):
    # a Krylov space exhausted after 2 steps, then NaN; eigh raises on it
    t_crash = torch.zeros(1, 5, 5, dtype=torch.float64)
    t_crash[0] += torch.diag(torch.tensor([1.3694, 1.1521, 0.99315, 1.5283, math.nan]))
    off = torch.tensor([0.70229, 1.4648e-14, 9.6937e-16, 0.0])
    t_crash[0] += torch.diag(off, 1) + torch.diag(off, -1)
    with pytest.raises(torch.linalg.LinAlgError):
        torch.linalg.eigvalsh(t_crash)
    good = torch.diag(torch.tensor([1.0, -3.0, 2.0, 0.0, 0.0], dtype=torch.float64))
    with pytest.warns(RuntimeWarning, match="1 tridiagonal matrices not finite"):
        est = _largest_abs_eigenvalue(torch.cat([t_crash, good[None]]))
    assert math.isinf(est[0]) and est[1] == 3.0
    # an operator that returns NaN on one row: that row only gives inf
    gen = torch.Generator().manual_seed(2)
    a = torch.randn(3, 6, 6, generator=gen, dtype=torch.float64)
    sym = a + a.transpose(1, 2)
    exact_max = torch.linalg.eigvalsh(sym).abs().amax(dim=1)
    bad = sym.clone()
    bad[1, 2, 3] = bad[1, 3, 2] = math.nan
    v0 = torch.randn(3, 6, generator=gen, dtype=torch.float64)
    with pytest.warns(RuntimeWarning, match="not finite"):
        est = lanczos_extreme(_batched(bad), v0, 6)
    assert math.isinf(est[1])
    torch.testing.assert_close(est[[0, 2]], exact_max[[0, 2]], rtol=1e-10, atol=0)


def test_lanczos_uses_gershgorin_when_the_eigen_solver_fails(monkeypatch):
    gen = torch.Generator().manual_seed(3)
    a = torch.randn(2, 5, 5, generator=gen, dtype=torch.float64)
    sym = a + a.transpose(1, 2)
    v0 = torch.randn(2, 5, generator=gen, dtype=torch.float64)
    ritz = lanczos_extreme(_batched(sym), v0, 3)

    def failing(t):
        raise torch.linalg.LinAlgError("linalg.eigh failed to converge")

    monkeypatch.setattr(torch.linalg, "eigvalsh", failing)
    with pytest.warns(RuntimeWarning, match="eigenvalue solver failed: True"):
        bound = lanczos_extreme(_batched(sym), v0, 3)
    # Gershgorin: above every Ritz value, below ||A||_2 times sqrt(3)
    norm2 = torch.linalg.matrix_norm(sym, 2)
    assert bool((bound >= ritz).all()) and bool((bound <= 3**0.5 * norm2).all())


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
    """Certified rule: certified directions descend, accepted steps lower f."""
    problem, theta0 = tiny_bilevel()
    solver = make_solver(
        "MAID", problem, theta0, step_size=100.0, acceptance="certified"
    )
    hypergradients = spy_hypergradients(solver)
    n_certified = accepted_before = 0
    for _ in range(8):
        theta_old = solver.theta.clone()
        f_old, grad_f = exact(problem, theta_old)
        step(solver)
        info = solver.info()
        z = hypergradients[-1].z  # the hypergradient the round used
        if info["certified"]:
            n_certified += 1
            d = theta_old - solver.oracles.project(theta_old - z)
            assert float(z @ grad_f) > 0
            assert float(d @ grad_f) >= solver.eta * float(d @ d)
            assert info["omega_ratio"] <= 1 - solver.eta
        if info["n_accepted"] > accepted_before:
            expect = solver.oracles.project(theta_old - info["step_size"] * z)
            torch.testing.assert_close(solver.theta, expect, rtol=0, atol=0)
            f_new, _ = exact(problem, solver.theta)
            assert f_new < f_old
        else:
            assert torch.equal(solver.theta, theta_old)
        accepted_before = info["n_accepted"]
    assert accepted_before >= 6 and n_certified >= 6
    assert solver.stop_reason is None


def test_maid_oracle_calls_match_hand_counts_with_trials():
    """ul_grad and jvp counted by hand from the reported trials and tightenings."""
    problem, theta0 = tiny_bilevel()
    n = problem.n_images
    # a large first step forces rejected trials
    solver = make_solver(
        "MAID",
        problem,
        theta0,
        step_size=3000.0,
        max_backtracks=3,
        const_every=4,
        acceptance="certified",
    )
    spy = OracleSpy(solver.oracles)
    n_rounds, hypergradients, trials = 6, 0, []
    for _ in range(n_rounds):
        step(solver)
        info = solver.info()
        hypergradients += 1 + info["n_tighten"]
        trials.append(info["n_backtracks"])
    c = solver.oracles.counters
    assert max(trials) > 1  # some trial was rejected, and counted
    info = solver.info()
    assert info["n_accepted"] + info["n_rejected"] == sum(trials)
    # one ul_grad per image per hypergradient and per trial point
    assert c.ul_grad == n * (hypergradients + sum(trials))
    # one jvp per image per hypergradient; the constants, estimated at rounds
    # 0 and 4 on const_images = 4 images, add 3 const_iter jvp per image
    n_estimates, per_estimate = 2, 3 * solver.const_iter * solver.const_images
    assert spy.count("jvp") == c.jvp == n * hypergradients + n_estimates * per_estimate
    # and 6 const_iter (ll_grad + hvp) per image: cost of the solves is the rest
    assert c.cost == c.ll_grad + c.hvp > n_estimates * 2 * per_estimate
    # every image paid for every solve (full batch)
    per = c.per_image["ll_grad"] + c.per_image["hvp"]
    assert int(per.sum()) == c.cost and bool((per > 0).all())


def test_maid_decrease_rule_skips_the_constants():
    problem, theta0 = tiny_bilevel()
    n = problem.n_images
    solver = make_solver("MAID", problem, theta0, acceptance="decrease")
    spy = OracleSpy(solver.oracles)
    f0, _ = exact(problem, theta0)
    trials = []
    for _ in range(4):
        step(solver)
        trials.append(solver.info()["n_backtracks"])
        assert math.isnan(solver.info()["omega_ratio"])
    c = solver.oracles.counters
    assert solver.constants is None
    # one hypergradient per round on all images: no constants, no tightening
    assert c.jvp == 4 * n and spy.count("jvp") == 4 * n
    assert c.ul_grad == n * (4 + sum(trials))
    assert all(b == n for name, b, _ in spy.calls if name == "jvp")
    assert exact(problem, solver.theta)[0] < f0


def test_maid_stops_at_the_budget():
    """Past the budget only the running solve and its CG may finish."""
    problem, theta0 = tiny_bilevel()
    budget = 300
    solver = make_solver("MAID", problem, theta0, budget=budget, step_size=100.0)
    solver.checkpoints = [budget]
    spies = []
    make_oracles = problem.make_oracles

    def spied_oracles():
        o = make_oracles()
        spies.append(OracleSpy(o))
        return o

    problem.make_oracles = spied_oracles
    calls = {"n": 0}

    def callback():
        calls["n"] += 1
        return calls["n"] <= 3

    solver.run(callback)
    (spy,) = spies
    # the oracles refuse every costly call once the budget is reached
    # (docs/limits.md): the cost ends within one call on the 4 images
    cost = solver.oracles.counters.cost
    assert budget <= cost < budget + problem.n_images
    assert spy.calls[-1][2] <= cost
    first = next(i for i, (_, _, c) in enumerate(spy.calls) if c >= budget)
    after = {name for name, _, _ in spy.calls[first + 1 :]}
    assert after <= {"ul_grad", "jvp"}, after
    assert solver.status == "budget" and solver.n_accepted > 0


@pytest.mark.parametrize("acceptance", ["decrease", "certified"])
def test_maid_marks_a_run_that_accepts_no_step(acceptance):
    problem, theta0 = tiny_bilevel()
    solver = make_solver("MAID", problem, theta0, step_size=1e6, acceptance=acceptance)
    for k in range(solver.MAX_REJECTED_ROUNDS):
        assert solver.stop_reason is None, k
        step(solver)
    info = solver.info()
    assert info["n_accepted"] == 0
    assert info["n_rejected"] == solver.MAX_REJECTED_ROUNDS * solver.max_backtracks
    assert solver.stop_reason == "no step accepted"
    assert torch.equal(solver.theta, theta0)


@pytest.mark.parametrize(
    "name, bad",
    [
        ("MAID", {"rho": 1.5}),
        ("MAID", {"eta": 0.0}),
        ("MAID", {"step_size": 1e-300}),
        ("MAID", {"delta0": 1e-13}),
        ("MAID", {"eps0": 500.0}),
        ("MAID", {"acceptance": "armijo"}),
        ("HOAG", {"step_size": 1e11}),
        ("HOAG", {"eps0": 1e-30}),
        ("HOAG", {"delta_ratio": 100.0}),
    ],
)
def test_full_batch_rejects_bad_parameters(name, bad):
    assert_refused(name, *tiny_bilevel(), **bad)


# -- HOAG ------------------------------------------------------------------------------
# eps_k for eps0 = 1e-2, k = 0..4, by hand
HAND_SCHEDULES = {
    "geometric": [1e-2, 9e-3, 8.1e-3, 7.29e-3, 6.561e-3],
    "quadratic": [1e-2, 2.5e-3, 1e-2 / 9, 6.25e-4, 4e-4],
    "cubic": [1e-2, 1.25e-3, 1e-2 / 27, 1.5625e-4, 8e-5],
}


@pytest.mark.parametrize("schedule", sorted(HAND_SCHEDULES))
def test_hoag_solves_meet_the_scheduled_accuracy(schedule):
    problem, theta0 = tiny_bilevel()
    ratio = 0.5
    solver = make_solver(
        "HOAG",
        problem,
        theta0,
        eps0=1e-2,
        tolerance_decrease=schedule,
        delta_ratio=ratio,
        step_size=100.0,
    )
    o = problem.make_oracles()  # an independent referee
    idx = torch.arange(problem.n_images)
    for eps_k in HAND_SCHEDULES[schedule]:
        theta_k = solver.theta.clone()
        step(solver)
        info = solver.info()
        assert info["accuracy"] == pytest.approx(eps_k, rel=1e-12)
        assert info["delta"] == pytest.approx(ratio * eps_k, rel=1e-12)
        # the warm starts left in memory are the step's certified solutions
        x, q = solver.memory.x, solver.memory.q
        grad_norm = batch_norm(o.ll_grad(theta_k, x, idx))
        assert float(grad_norm.max()) <= eps_k
        _, grad_l = o.ul_grad(x, idx)
        residual = batch_norm(o.hvp(theta_k, x, q, idx) - grad_l)
        assert bool((residual <= ratio * eps_k * batch_norm(grad_l)).all())
    assert solver.oracles.counters.jvp == 5 * problem.n_images  # full batch


def test_hoag_step_size_heuristic():
    """alpha: kept at step 1, halved when f went up, grown by 1/0.95 on decrease."""
    problem, theta0 = tiny_bilevel()
    solver = make_solver("HOAG", problem, theta0, step_size=10000.0)
    f = [exact(problem, theta0)[0]]
    alphas = []
    for _ in range(6):
        step(solver)
        alphas.append(solver.info()["step_size"])
        f.append(exact(problem, solver.theta)[0])
    # step 1 has no previous step to judge; 10^4 is too large: f went up
    assert alphas[0] == 10000.0
    assert f[1] > f[0]
    assert alphas[1] == 5000.0
    # from then on alpha only changes by the two factors, and it did grow
    ratios = [new / old for old, new in zip(alphas, alphas[1:], strict=False)]
    assert all(r in (1.0, 0.5) or r == pytest.approx(1 / 0.95) for r in ratios)
    assert any(r == pytest.approx(1 / 0.95) for r in ratios)
