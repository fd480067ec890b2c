"""Regulariser maths against finite differences, adjoints and bounds (float64).

Every regulariser in ``REG_CASES`` must pass the same checks: gradient, HVP
and mixed product against central differences, convexity (first-order
condition), and a Lipschitz bound that holds on random directions.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from benchmark_utils.regularisers import (
    ICNN,
    ConvexRidge,
    FieldsOfExperts,
    make_regulariser,
)
from benchmark_utils.regularisers import crr as crr_module
from benchmark_utils.regularisers import tv as tv_module
from benchmark_utils.regularisers.crr import gram_norm_bound

REG_CASES = [
    ("foe", 1, {"n_filters": 3, "kernel_size": 3}),
    ("foe", 3, {"n_filters": 2, "kernel_size": 5}),
    ("tv", 1, {}),
    ("tv", 3, {"n_filters": 8, "kernel_size": 5}),
    ("crr", 1, {"n_filters": 3, "kernel_size": 3, "hidden": (2,)}),
    ("crr", 3, {"n_filters": 2, "kernel_size": 3, "hidden": (2, 2)}),
    ("icnn", 1, {"n_filters": 3, "kernel_size": 3}),
    ("icnn", 3, {"n_filters": 2, "kernel_size": 3, "n_layers": 3}),
    ("icnn", 1, {"n_filters": 2, "kernel_size": 3, "n_layers": 1}),
]
IDS = [f"{name}-C{c}-{i}" for i, (name, c, _) in enumerate(REG_CASES)]


def _setup(name, channels, kwargs, seed=0):
    reg = make_regulariser(name, channels, **kwargs)
    theta = reg.project(reg.init_theta(seed, dtype=torch.float64))
    gen = torch.Generator().manual_seed(seed + 1)
    # perturb theta so that no parameter sits at a symmetric initial value
    theta = reg.project(
        theta + 0.1 * torch.randn(theta.shape, generator=gen, dtype=torch.float64)
    )
    x = torch.rand(2, channels, 10, 10, generator=gen, dtype=torch.float64)
    return reg, theta, x, gen


def _rel(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


@pytest.mark.parametrize("name,channels,kwargs", REG_CASES, ids=IDS)
def test_gradient_matches_finite_differences(name, channels, kwargs):
    reg, theta, x, gen = _setup(name, channels, kwargs)
    d = torch.randn(x.shape, generator=gen, dtype=torch.float64)
    t = 1e-6
    fd = (reg.value(x + t * d, theta) - reg.value(x - t * d, theta)) / (2 * t)
    an = (reg.grad(x, theta) * d).flatten(1).sum(1)
    assert _rel(an, fd) < 1e-6


@pytest.mark.parametrize("name,channels,kwargs", REG_CASES, ids=IDS)
def test_hvp_matches_finite_differences(name, channels, kwargs):
    reg, theta, x, gen = _setup(name, channels, kwargs)
    v = torch.randn(x.shape, generator=gen, dtype=torch.float64)
    t = 1e-6
    fd = (reg.grad(x + t * v, theta) - reg.grad(x - t * v, theta)) / (2 * t)
    assert _rel(reg.hvp(x, theta, v), fd) < 1e-5
    # the cached operator applied to a subset of rows agrees with the full one
    hess = reg.hessian(x, theta)
    rows = torch.tensor([1])
    assert torch.allclose(hess(v[rows], rows), hess(v)[rows])


@pytest.mark.parametrize("name,channels,kwargs", REG_CASES, ids=IDS)
def test_mixed_product_matches_finite_differences(name, channels, kwargs):
    reg, theta, x, gen = _setup(name, channels, kwargs)
    q = torch.randn(x.shape, generator=gen, dtype=torch.float64)
    d = torch.randn(theta.shape, generator=gen, dtype=torch.float64)
    t = 1e-6

    def inner(th):
        return (reg.grad(x, th) * q).flatten(1).sum(1)

    fd = (inner(theta + t * d) - inner(theta - t * d)) / (2 * t)
    rows = reg.mixed(x, theta, q, per_image=True)
    assert rows.shape == (2, theta.numel())
    assert _rel(rows @ d, fd) < 1e-5
    assert torch.allclose(reg.mixed(x, theta, q), rows.sum(0))


@pytest.mark.parametrize("name,channels,kwargs", REG_CASES, ids=IDS)
def test_convex_first_order_condition(name, channels, kwargs):
    reg, theta, x, gen = _setup(name, channels, kwargs)
    for _ in range(5):
        x2 = torch.rand(x.shape, generator=gen, dtype=torch.float64) * 2 - 0.5
        gap = (
            reg.value(x2, theta)
            - reg.value(x, theta)
            - (reg.grad(x, theta) * (x2 - x)).flatten(1).sum(1)
        )
        assert bool((gap >= -1e-10).all())


@pytest.mark.parametrize("name,channels,kwargs", REG_CASES, ids=IDS)
def test_lipschitz_bound_holds_on_random_directions(name, channels, kwargs):
    reg, theta, x, gen = _setup(name, channels, kwargs)
    bound = reg.lipschitz(theta)
    hess = reg.hessian(x, theta)
    worst = 0.0
    for _ in range(20):
        v = torch.randn(x.shape, generator=gen, dtype=torch.float64)
        hv = hess(v)
        worst = max(
            worst, float((hv.flatten(1).norm(dim=1) / v.flatten(1).norm(dim=1)).max())
        )
    # also the worst case direction found by power iteration
    v = torch.randn(x.shape, generator=gen, dtype=torch.float64)
    for _ in range(100):
        v = hess(v)
        v = v / v.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    worst = max(worst, float(hess(v).flatten(1).norm(dim=1).max()))
    assert 0 < worst <= bound


@pytest.mark.parametrize("channels", [1, 3])
def test_foe_convolution_adjoint_dot_product(channels):
    gen = torch.Generator().manual_seed(3)
    for s in (3, 5, 7):
        reg = FieldsOfExperts(channels, n_filters=4, kernel_size=s)
        filters = torch.randn(4, channels, s, s, generator=gen, dtype=torch.float64)
        x = torch.randn(2, channels, 11, 13, generator=gen, dtype=torch.float64)
        u = torch.randn(2, 4, 11, 13, generator=gen, dtype=torch.float64)
        lhs = (reg._conv(x, filters) * u).sum()
        rhs = (x * reg._conv_t(u, filters)).sum()
        assert abs(float(lhs - rhs)) <= 1e-12 * abs(float(lhs))
        # the same zero-padded correlation as torch's conv2d, and the adjoint
        # is torch's conv_transpose2d
        assert torch.equal(reg._conv(x, filters), F.conv2d(x, filters, padding=s // 2))
        assert torch.allclose(
            reg._conv_t(u, filters),
            F.conv_transpose2d(u, filters, padding=s // 2),
            rtol=1e-12,
            atol=1e-12,
        )


def test_foe_projection_and_layout():
    reg = FieldsOfExperts(3, n_filters=5, kernel_size=3)
    theta = reg.init_theta(1, dtype=torch.float64)
    theta = theta + 1.0
    proj = reg.project(theta)
    parts = reg.unpack(proj)
    assert parts["filters"].shape == (5, 3, 3, 3)
    assert parts["filters"].mean(dim=(1, 2, 3)).abs().max() < 1e-14
    # projection is idempotent and leaves the weights untouched
    assert torch.allclose(reg.project(proj), proj, rtol=0, atol=1e-15)
    assert torch.equal(parts["log_weights"], reg.unpack(theta)["log_weights"])
    # a constant image gives a zero gradient with zero-mean filters
    const = torch.full((1, 3, 8, 8), 0.7, dtype=torch.float64)
    assert reg.grad(const, proj)[..., 2:-2, 2:-2].abs().max() < 1e-12


def test_foe_seeded_init_is_reproducible():
    reg = FieldsOfExperts(1, n_filters=4, kernel_size=5)
    assert torch.equal(reg.init_theta(7), reg.init_theta(7))
    assert not torch.equal(reg.init_theta(7), reg.init_theta(8))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"n_filters": 0}, "n_filters"),
        ({"kernel_size": 4}, "kernel_size"),
        ({"init_smoothing": 0.0}, "init_smoothing"),
    ],
)
def test_foe_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FieldsOfExperts(1, **kwargs)


def test_unknown_regulariser():
    with pytest.raises(ValueError, match="regulariser must be one of"):
        make_regulariser("nope", 1)


# -- every regulariser: the objective's constructor call ----------------------
@pytest.mark.parametrize("name", ["foe", "tv", "crr", "icnn"])
def test_objective_constructor_call(name):
    # the objective always passes n_filters and kernel_size
    reg = make_regulariser(name, 1, n_filters=3, kernel_size=3)
    theta = reg.project(reg.init_theta(0, dtype=torch.float64))
    assert theta.shape == (reg.n_params,)
    assert torch.equal(reg.init_theta(5), reg.init_theta(5))
    views = reg.unpack(theta)
    if name != "tv":
        # first-layer filters (K, C, s, s) for the filter plot
        assert views["filters"].ndim == 4 and views["filters"].shape[1:] == (1, 3, 3)
    x = torch.rand(1, 1, 8, 8, dtype=torch.float64)
    assert reg.grad(x, theta).shape == x.shape
    assert reg.value(x, theta).shape == (1,)


@pytest.mark.parametrize(
    "name,kwargs,match",
    [
        ("tv", {"init_smoothing": 0.0}, "init_smoothing"),
        ("tv", {"log_scale": -1.0}, "log_scale"),
        ("crr", {"kernel_size": 4}, "kernel_size"),
        ("crr", {"n_filters": 0}, "n_filters"),
        ("crr", {"hidden": (4, 0)}, "hidden"),
        ("icnn", {"n_layers": 0}, "n_layers"),
        ("icnn", {"smoothing": 0.0}, "smoothing"),
        ("icnn", {"kernel_size": 2}, "kernel_size"),
    ],
)
def test_new_regularisers_bad_parameters(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_regulariser(name, 1, **kwargs)


def _power_norm(hess, shape, gen, n_iter=200):
    v = torch.randn(shape, generator=gen, dtype=torch.float64)
    for _ in range(n_iter):
        v = hess(v)
        v = v / v.norm()
    return float(hess(v).norm())


# -- smoothed TV -------------------------------------------------------------
def test_tv_difference_adjoint_and_edge_value():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 7, 9, generator=gen, dtype=torch.float64)
    g = torch.randn(2, 3, 2, 7, 9, generator=gen, dtype=torch.float64)
    lhs = (tv_module._diff(x) * g).sum()
    rhs = (x * tv_module._diff_t(g)).sum()
    assert abs(float(lhs - rhs)) <= 1e-12 * abs(float(lhs))
    # a vertical unit step: one jump per row, each costs sqrt(1 + eps^2) - eps
    reg = make_regulariser("tv", 1)
    theta = torch.tensor([0.1, -0.7], dtype=torch.float64)
    lam, eps = (float(t) for t in torch.exp(reg.log_scale * theta))
    step = torch.zeros(1, 1, 6, 10, dtype=torch.float64)
    step[..., 4:] = 1.0
    expected = lam * 6 * (math.sqrt(1 + eps**2) - eps)
    assert float(reg.value(step, theta)) == pytest.approx(expected, rel=1e-12)
    assert float(reg.value(torch.ones_like(step), theta)) == 0.0


def test_tv_lipschitz_is_nearly_attained():
    # at x = 0 the Hessian is lambda / eps D^T D, whose norm tends to 8 lambda / eps
    reg = make_regulariser("tv", 1)
    theta = torch.tensor([0.2, -0.5], dtype=torch.float64)
    x = torch.zeros(1, 1, 32, 32, dtype=torch.float64)
    gen = torch.Generator().manual_seed(1)
    norm = _power_norm(reg.hessian(x, theta), x.shape, gen)
    assert 0.98 * reg.lipschitz(theta) <= norm <= reg.lipschitz(theta)


# -- convex ridge regulariser ------------------------------------------------
def test_crr_composite_kernel_is_the_layered_network():
    reg = ConvexRidge(3, n_filters=5, kernel_size=3, hidden=(3, 4))
    theta = reg.project(reg.init_theta(2, dtype=torch.float64))
    layers = reg.unpack(theta)["layers"]
    kernel = reg.composite(theta)
    assert kernel.shape == (5, 3, 7, 7) and reg.composite_size == 7
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(2, 3, 9, 11, generator=gen, dtype=torch.float64)
    # zero-pad by the composite radius, then "valid" convolutions per layer
    h = F.pad(x, (3, 3, 3, 3))
    for k in layers:
        h = F.conv2d(h, k)
    torch.testing.assert_close(reg._conv(x, kernel), h, rtol=1e-12, atol=1e-12)
    # and the adjoint is exact
    u = torch.randn(h.shape, generator=gen, dtype=torch.float64)
    lhs = (reg._conv(x, kernel) * u).sum()
    rhs = (x * reg._conv_t(u, kernel)).sum()
    assert abs(float(lhs - rhs)) <= 1e-12 * abs(float(lhs))
    torch.testing.assert_close(
        reg._conv_t(u, kernel), F.conv_transpose2d(u, kernel, padding=3)
    )


def test_crr_projection_zero_mean_first_layer():
    reg = ConvexRidge(1, n_filters=4, kernel_size=3)
    theta = reg.init_theta(1, dtype=torch.float64) + 0.3
    proj = reg.project(theta)
    first = reg.unpack(proj)["filters"]
    assert first.shape == (4, 1, 3, 3)
    assert first.mean(dim=(1, 2, 3)).abs().max() < 1e-14
    torch.testing.assert_close(reg.project(proj), proj, rtol=0, atol=1e-15)
    # later layers and profile parameters are untouched
    n_first = first.numel()
    assert torch.equal(proj[n_first:], theta[n_first:])
    # W ignores constant images away from the border, so does grad R
    const = torch.full((1, 1, 20, 20), 0.4, dtype=torch.float64)
    r = reg.composite_size - 1
    assert reg.grad(const, proj)[..., r:-r, r:-r].abs().max() < 1e-12


def test_crr_profile_is_stable_and_huber_like():
    reg = ConvexRidge(1, n_filters=2, kernel_size=3, hidden=())
    theta = reg.project(reg.init_theta(0, dtype=torch.float64))
    big = torch.full((1, 1, 5, 5), 1e4, dtype=torch.float64)
    big[..., 2, 2] = -1e4
    assert bool(torch.isfinite(reg.value(big, theta)).all())
    assert bool(torch.isfinite(reg.grad(big, theta)).all())
    u = torch.tensor([1e-4, 30.0, -300.0], dtype=torch.float64)
    expected = torch.log(torch.cosh(u))
    torch.testing.assert_close(crr_module._logcosh(u), expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("shape", [(4, 1, 3, 3), (5, 3, 5, 5), (6, 2, 7, 7)])
def test_gram_norm_bound_is_tight_and_rigorous(shape):
    gen = torch.Generator().manual_seed(7)
    kernel = torch.randn(shape, generator=gen, dtype=torch.float64)
    weights = torch.rand(shape[0], generator=gen, dtype=torch.float64)
    bound = gram_norm_bound(kernel, weights)
    # the symbol on a much finer grid is a lower bound on its supremum
    spec = torch.fft.fft2(kernel, s=(512, 512))
    mats = torch.einsum("o,oaxy,obxy->xyab", weights, spec.conj(), spec)
    fine = float(torch.linalg.eigvalsh(mats).amax())
    assert fine <= bound <= 1.1 * fine
    # and the finite zero-padded operator has a norm below the bound
    s = shape[-1]

    def normal(v):
        u = F.conv2d(v, kernel, padding=s // 2) * weights.view(1, -1, 1, 1)
        return F.conv_transpose2d(u, kernel, padding=s // 2)

    norm = _power_norm(normal, (1, shape[1], 40, 40), gen)
    assert 0.8 * bound <= norm <= bound


def test_crr_lipschitz_is_nearly_attained():
    # at x = 0, psi'' = exp(a) / eps everywhere: the bound's worst case
    reg = ConvexRidge(1, n_filters=6, kernel_size=3, hidden=(4,))
    theta = reg.project(reg.init_theta(3, dtype=torch.float64))
    x = torch.zeros(1, 1, 40, 40, dtype=torch.float64)
    gen = torch.Generator().manual_seed(2)
    norm = _power_norm(reg.hessian(x, theta), x.shape, gen)
    bound = reg.lipschitz(theta)
    assert 0.85 * bound <= norm <= bound
    # the cached bound follows theta
    theta2 = theta.clone()
    reg.unpack(theta2)["log_weights"].add_(1.0)
    assert reg.lipschitz(theta2) == pytest.approx(math.e * bound, rel=1e-10)
    assert reg.lipschitz(theta) == bound


# -- input-convex network ----------------------------------------------------
def test_icnn_projection_keeps_hidden_weights_non_negative():
    reg = ICNN(1, n_filters=3, kernel_size=3, n_layers=3)
    theta = reg.init_theta(0, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    theta = theta + torch.randn(theta.shape, generator=gen, dtype=torch.float64)
    proj = reg.project(theta)
    views, raw = reg.unpack(proj), reg.unpack(theta)
    assert len(views["V"]) == 2 and len(views["W"]) == 3 and len(views["b"]) == 3
    for v, v_raw in zip(views["V"], raw["V"], strict=True):
        assert bool((v >= 0).all()) and bool((v_raw < 0).any())
        assert torch.equal(v, v_raw.clamp_min(0))
    for w, w_raw in zip(views["W"], raw["W"], strict=True):
        assert torch.equal(w, w_raw)
    assert torch.equal(reg.project(proj), proj)
    # the initial theta is feasible
    init = reg.init_theta(1, dtype=torch.float64)
    assert torch.equal(reg.project(init), init)


def test_icnn_negative_hidden_weights_break_convexity():
    # the projection matters: without it the first-order condition fails
    # R(x) = sum_h sigma(-5 sum_m sigma(x)): flat for x << 0, then decreasing
    reg = ICNN(1, n_filters=2, kernel_size=1, n_layers=2, smoothing=0.1, init_scale=1)
    theta = reg.init_theta(0, dtype=torch.float64)
    views = reg.unpack(theta)
    views["V"][0].fill_(-5.0 / reg.hidden_scale)
    views["W"][1].zero_()
    views["W"][0].fill_(1.0 / reg.weight_scale)
    x = torch.full((1, 1, 1, 1), -1.0, dtype=torch.float64)
    y = torch.full_like(x, 1.0)
    d = y - x
    gap = reg.value(y, theta) - reg.value(x, theta) - (reg.grad(x, theta) * d).sum()
    assert float(gap) < -0.1
    proj = reg.project(theta)
    gap = reg.value(y, proj) - reg.value(x, proj) - (reg.grad(x, proj) * d).sum()
    assert float(gap) >= 0


def test_icnn_one_layer_lipschitz_is_nearly_attained():
    # one layer, zero bias, x = 0: sigma'' = 1 / (4 beta) everywhere
    reg = ICNN(1, n_filters=4, kernel_size=3, n_layers=1)
    theta = reg.init_theta(2, dtype=torch.float64)
    x = torch.zeros(1, 1, 40, 40, dtype=torch.float64)
    gen = torch.Generator().manual_seed(3)
    norm = _power_norm(reg.hessian(x, theta), x.shape, gen)
    bound = reg.lipschitz(theta)
    assert 0.9 * bound <= norm <= bound


def test_icnn_hidden_norm_is_the_tap_sum_norm():
    # V >= 0: the correlation's norm is that of its tap sums (used by the bound)
    gen = torch.Generator().manual_seed(5)
    v = torch.rand(4, 3, 3, 3, generator=gen, dtype=torch.float64)
    exact = float(torch.linalg.matrix_norm(v.sum(dim=(2, 3)), ord=2)) ** 2
    bound = gram_norm_bound(v)
    assert exact <= bound <= 1.1 * exact
