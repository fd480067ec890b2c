"""Doubly-stochastic baselines: stocBiO, AmIGO, SOBA, TTSA, BSA (float64).

Hand counts of the oracle calls, the random-length Neumann estimator, descent
on a tiny denoising problem, stocBiO's hypergradient against the IFT one, and
SOBA's and AmIGO's inner step and inner-to-outer ratio by hand.
"""

import math

import pytest
import torch

from benchmark_utils.hypergradient import inexact_hypergradient, neumann_inverse
from benchmark_utils.lower_level import solve_lower_level
from benchmark_utils.sampling import EpochSampler
from benchmark_utils.stochastic import draw_neumann_lengths, random_neumann
from tests.bench_helpers import assert_refused, solver_on_problem, tiny_bilevel

NAMES = ["stocBiO", "AmIGO", "SOBA", "TTSA", "BSA"]
SEED = 3


def make_solver(name, problem, theta0, budget=10**9, **params):
    return solver_on_problem(name, problem, theta0, budget, SEED, **params)


def run_steps(solver, n_steps):
    for _ in range(n_steps):
        solver.step()
        solver.n_outer += 1


def full_loss(problem, theta):
    """f(theta) = mean_i l_i(x_i(theta)), lower level solved to 1e-9."""
    o = problem.make_oracles()
    idx = torch.arange(o.n_images)
    res = solve_lower_level(o, theta, o.initial_x(idx), idx, tol=1e-9)
    return float(o.ul_grad(res.x, idx)[0].mean())


# -- cost in oracle calls, counted by hand ------------------------------------
# per image per step: (ll_grad, hvp) for the fixed-length methods; None marks
# the random Neumann length, counted from the drawn lengths.
HAND_COST = {
    "stocBiO": (dict(n_inner=3, n_neumann=4), 3, 4),
    "AmIGO": (dict(n_inner=3, n_linear=5), 3, 5),
    "SOBA": ({}, 1, 1),
    "TTSA": (dict(n_neumann=6), 1, None),
    "BSA": (dict(n_inner=3, n_neumann=6), 3, None),
}


@pytest.mark.parametrize("name", NAMES)
def test_cost_matches_hand_count(name):
    problem, theta0 = tiny_bilevel()
    params, k_ll, k_hvp = HAND_COST[name]
    batch, n_steps = 2, 5
    solver = make_solver(name, problem, theta0, batch_size=batch, **params)
    run_steps(solver, n_steps)
    c = solver.oracles.counters

    # the batches the solver saw, replayed from its seed
    sampler = EpochSampler(problem.n_images, batch, SEED)
    batches = [sampler.next() for _ in range(n_steps)]
    if k_hvp is None:
        # lengths replayed from a generator seeded like the solver's
        gen = torch.Generator().manual_seed(SEED)
        lengths = [
            draw_neumann_lengths(gen, batch, params["n_neumann"])
            for _ in range(n_steps)
        ]
    else:
        lengths = [torch.full((batch,), k_hvp) for _ in range(n_steps)]
    n_hvp = int(sum(int(p.sum()) for p in lengths))

    assert c.ll_grad == n_steps * batch * k_ll
    assert c.hvp == n_hvp
    assert c.cost == n_steps * batch * k_ll + n_hvp
    assert c.jvp == n_steps * batch
    assert c.ul_grad == n_steps * batch
    # per image: the sampled images, and only they, paid their own lengths
    expect_ll = torch.zeros(problem.n_images, dtype=torch.int64)
    expect_hvp = torch.zeros(problem.n_images, dtype=torch.int64)
    for idx, p in zip(batches, lengths, strict=True):
        expect_ll.index_add_(0, idx, torch.full_like(idx, k_ll))
        expect_hvp.index_add_(0, idx, p.to(torch.int64))
    assert torch.equal(c.per_image["ll_grad"], expect_ll)
    assert torch.equal(c.per_image["hvp"], expect_hvp)


def hvp_per_step(solver, n_steps):
    """The ``hvp`` count of each of ``n_steps`` steps."""
    counts = []
    for _ in range(n_steps):
        before = solver.oracles.counters.hvp
        run_steps(solver, 1)
        counts.append(solver.oracles.counters.hvp - before)
    return counts


def test_random_lengths_vary_and_are_reproducible():
    problem, theta0 = tiny_bilevel()
    runs = []
    for _ in range(2):
        solver = make_solver("TTSA", problem, theta0, batch_size=2, n_neumann=6)
        runs.append((hvp_per_step(solver, 20), solver.theta))
    counts = runs[0][0]
    # two images, each 0..5 products: from 0 to 10 per step, not constant
    assert min(counts) >= 0 and max(counts) <= 10
    assert len(set(counts)) > 2
    assert counts == runs[1][0]
    assert torch.equal(runs[0][1], runs[1][1])


# -- the random-length Neumann estimator ----------------------------------------
def test_random_neumann_is_unbiased():
    """Averaged over all lengths p = 0..N-1, it is the N-term Neumann series."""
    problem, theta0 = tiny_bilevel(n_images=1)
    o = problem.make_oracles()
    n_max = 7
    idx = torch.zeros(n_max, dtype=torch.int64)
    x = o.initial_x(idx)
    gen = torch.Generator().manual_seed(1)
    b = torch.randn(x[:1].shape, generator=gen, dtype=torch.float64).expand_as(x)
    eta = 1.0 / o.lipschitz(theta0)
    lengths = torch.arange(n_max)
    est = random_neumann(o.hessian(theta0, x, idx), b, lengths, n_max, eta)
    assert o.counters.hvp == int(lengths.sum())
    ref = neumann_inverse(o.hessian(theta0, x[:1], idx[:1]), b[:1], n_max - 1, eta)
    err = (est.mean(dim=0, keepdim=True) - ref).norm() / ref.norm()
    assert float(err) < 1e-12


# -- descent ---------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_lowers_upper_loss(name):
    """Default parameters, batches of 2 of 4 images, cost budget 2000."""
    problem, theta0 = tiny_bilevel()
    budget = 2000
    solver = make_solver(name, problem, theta0, budget=budget, batch_size=2)
    solver.checkpoints = [budget // 4, budget // 2, budget]
    solver.run(lambda: True)
    assert not solver.diverged
    assert solver.oracles.counters.cost >= budget
    f0, f1 = full_loss(problem, theta0), full_loss(problem, solver.theta)
    assert f1 < 0.7 * f0, (f0, f1)


# -- stocBiO is the IFT hypergradient when K and Q are large -----------------------
def test_stocbio_exact_limit_matches_ift():
    problem, theta0 = tiny_bilevel(n_images=2, size=8)
    o = problem.make_oracles()
    gen = torch.Generator().manual_seed(2)
    theta = o.project(theta0 + 0.1 * torch.randn(theta0.shape, generator=gen))
    big_l, m = o.lipschitz(theta), o.strong_convexity(theta)
    # GD and the Neumann series contract like (1 - m/L) per step
    n_steps = int(math.ceil(math.log(1e-14) / math.log(1 - m / big_l)))
    solver = make_solver(
        "stocBiO", problem, theta, n_inner=n_steps, n_neumann=n_steps, batch_size=2
    )
    idx = torch.arange(2)
    x, v, _ = solver.hypergradient_pieces(idx)
    z = -solver.oracles.jvp(solver.theta, x, v, idx) / 2
    ref = inexact_hypergradient(o, theta, idx, eps=1e-11, delta=1e-11).z
    assert float((z - ref).norm() / ref.norm()) < 1e-6
    # and a short stocBiO is visibly off: the test can fail
    short = make_solver("stocBiO", problem, theta, n_inner=2, n_neumann=2, batch_size=2)
    xs, vs, _ = short.hypergradient_pieces(idx)
    zs = -short.oracles.jvp(theta, xs, vs, idx) / 2
    assert float((zs - ref).norm() / ref.norm()) > 1e-2


# -- SOBA and AmIGO: the anchor's steps, by hand ---------------------------------------
def test_soba_two_steps_by_hand():
    """Inner step step_size / L on x and v; outer step inner / outer_ratio."""
    problem, theta0 = tiny_bilevel()
    params = dict(batch_size=4, step_size=1.5, outer_ratio=0.05)
    solver = make_solver("SOBA", problem, theta0, **params)
    o = problem.make_oracles()
    idx = torch.arange(problem.n_images)  # one batch: all four images
    x0 = o.initial_x(idx)
    rho = 1.5 / o.lipschitz(theta0)
    grad = o.ll_grad(theta0, x0, idx)
    _, grad_l = o.ul_grad(x0, idx)
    run_steps(solver, 1)
    torch.testing.assert_close(solver.memory.x, x0 - rho * grad)
    # v starts at 0: D_v = -grad l, and theta does not move (J^T 0 = 0)
    v1 = rho * grad_l
    torch.testing.assert_close(solver.memory.q, v1)
    theta1 = o.project(theta0)
    torch.testing.assert_close(solver.theta, theta1)
    # second step, at (x1, v1, theta1): theta moves by (rho / ratio) J^T v1 / 4
    x1 = x0 - rho * grad
    z = -o.jvp(theta1, x1, v1, idx) / 4
    rho1 = 1.5 / o.lipschitz(theta1)
    run_steps(solver, 1)
    torch.testing.assert_close(solver.theta, o.project(theta1 - rho1 / 0.05 * z))
    info = solver.info()
    assert info["inner_step"] == pytest.approx(rho1, rel=1e-12)
    assert info["step_size"] == pytest.approx(rho1 / 0.05, rel=1e-12)


def test_amigo_step_by_hand():
    """K = T = 1: x, then v from 0 at the new x, both at step_size / L."""
    problem, theta0 = tiny_bilevel()
    params = dict(batch_size=4, step_size=0.5, outer_ratio=0.01, n_inner=1)
    solver = make_solver("AmIGO", problem, theta0, n_linear=1, **params)
    o = problem.make_oracles()
    idx = torch.arange(problem.n_images)
    rho = 0.5 / o.lipschitz(theta0)
    x0 = o.initial_x(idx)
    x1 = x0 - rho * o.ll_grad(theta0, x0, idx)
    _, grad_l = o.ul_grad(x1, idx)
    v1 = rho * grad_l  # one step from v = 0 on 1/2 v'Hv - grad l'v
    z = -o.jvp(theta0, x1, v1, idx) / 4
    run_steps(solver, 1)
    torch.testing.assert_close(solver.memory.x, x1)
    torch.testing.assert_close(solver.memory.q, v1)
    torch.testing.assert_close(solver.theta, o.project(theta0 - rho / 0.01 * z))


@pytest.mark.parametrize(
    "name, bad",
    [
        ("stocBiO", {"n_inner": 0}),
        ("AmIGO", {"n_linear": 0}),
        ("SOBA", {"step_size": -1.0}),
        # an inner step of 2 / L or more diverges on the lower level
        ("SOBA", {"step_size": 2.0}),
        ("AmIGO", {"outer_ratio": 0.0}),
        ("AmIGO", {"outer_ratio": 1e5}),
        ("TTSA", {"n_neumann": 0}),
        ("BSA", {"batch_size": 99}),
        ("BSA", {"n_inner": 2.5}),
        ("TTSA", {"inner_power": float("nan")}),
        ("stocBiO", {"step_power": "fast"}),
        # steps that cannot move theta in float32, or throw it far away
        ("ISGD", {"step_size": 1e-300}),
        ("ISGD", {"step_size": 5e-5}),
        ("stocBiO", {"step_size": 1e11}),
        ("TTSA", {"step_size": 3e10}),
        # accuracies no run can certify, or that never solve
        ("ISGD", {"eps0": 1e-30}),
        ("ISGD", {"eps0": 1e3}),
        # relative CG tolerance delta_ratio * eps0 >= 1: CG never starts
        ("ISGD", {"delta_ratio": 100.0}),
        ("ISGD", {"delta_ratio": 1e-11}),
    ],
)
def test_bad_parameters_raise(name, bad):
    assert_refused(name, *tiny_bilevel(), **bad)


@pytest.mark.parametrize(
    "name, edge",
    [
        ("ISGD", {"step_size": 1e-4}),
        ("TTSA", {"step_size": 1e10}),
        ("SOBA", {"step_size": 1.99, "outer_ratio": 1e-10}),
        ("AmIGO", {"outer_ratio": 1e4}),
        ("ISGD", {"eps0": 1e-12, "delta_ratio": 1.0}),
        ("ISGD", {"eps0": 1e-2, "delta_ratio": 99.0}),
    ],
)
def test_range_edges_are_accepted(name, edge):
    problem, theta0 = tiny_bilevel()
    solver = make_solver(name, problem, theta0, **edge)
    for key, value in edge.items():
        assert getattr(solver, key) == value
