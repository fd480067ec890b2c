"""Regulariser maths against finite differences, adjoints and bounds (float64).

Every regulariser in ``REG_CASES`` must pass the same checks: gradient, HVP
and mixed product against central differences, convexity (first-order
condition), and a Lipschitz bound that holds on random directions.
"""

import pytest
import torch
import torch.nn.functional as F

from benchmark_utils.regularisers import FieldsOfExperts, make_regulariser

REG_CASES = [
    ("foe", 1, {"n_filters": 3, "kernel_size": 3}),
    ("foe", 3, {"n_filters": 2, "kernel_size": 5}),
]
IDS = [f"{name}-C{c}" for name, c, _ in REG_CASES]


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
        worst = max(worst, float((hv.flatten(1).norm(dim=1) / v.flatten(1).norm(dim=1)).max()))
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
