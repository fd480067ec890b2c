"""Regulariser maths against finite differences, adjoints and bounds (float64).

Every regulariser in ``CASES`` must pass the same suite: gradient, HVP and
mixed product against central differences, convexity (first-order
condition), a Lipschitz bound above a power-iteration estimate and a
consistent parameter layout. ``CASES`` includes the example regulariser of
README.md's "Adding a regulariser" section, extracted and run unchanged.
"""

import functools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from benchmark_utils.regularisers import (
    ICNN,
    REGULARISERS,
    ConvexRidge,
    FieldsOfExperts,
    Regulariser,
    make_regulariser,
)
from benchmark_utils.regularisers import crr as crr_module
from benchmark_utils.regularisers import tv as tv_module
from benchmark_utils.regularisers.convolution import (
    correlate,
    correlate_t,
    gram_norm_bound,
)
from tests.bench_helpers import readme_code


@functools.cache
def readme_regulariser():
    """The class defined by the code block of README's "Adding a regulariser"."""
    code = readme_code("Adding a regulariser")
    namespace = {"__name__": "readme_example"}
    exec(compile(code, "README.md", "exec"), namespace)
    (cls,) = [
        v
        for v in namespace.values()
        if isinstance(v, type)
        and issubclass(v, Regulariser)
        and v.__module__ == "readme_example"
    ]
    return cls


def _builtin(name, **kwargs):
    return functools.partial(make_regulariser, name, **kwargs)


def _readme(n_channels):
    return readme_regulariser()(n_channels)


# (factory(n_channels) -> regulariser, n_channels)
BUILTIN_CASES = [
    pytest.param(_builtin("foe", n_filters=3, kernel_size=3), 1, id="foe-C1"),
    pytest.param(_builtin("foe", n_filters=2, kernel_size=5), 3, id="foe-C3"),
    pytest.param(_builtin("foe", n_filters=2, kernel_size=1), 3, id="foe-C3-1x1"),
    pytest.param(
        _builtin("foe", n_filters=3, kernel_size=5, boundary="valid", init="dct"),
        1,
        id="foe-C1-valid",
    ),
    pytest.param(
        _builtin("foe", n_filters=2, kernel_size=3, boundary="valid"),
        3,
        id="foe-C3-valid",
    ),
    pytest.param(_builtin("tv"), 1, id="tv-C1"),
    pytest.param(_builtin("tv", n_filters=8, kernel_size=5), 3, id="tv-C3"),
    pytest.param(
        _builtin("crr", n_filters=3, kernel_size=3, hidden=(2,)), 1, id="crr-C1"
    ),
    pytest.param(
        _builtin("crr", n_filters=2, kernel_size=3, hidden=(2, 2)), 3, id="crr-C3"
    ),
    pytest.param(
        _builtin("crr", n_filters=3, kernel_size=3, hidden=(2,), boundary="mirror"),
        1,
        id="crr-C1-mirror",
    ),
    pytest.param(_builtin("icnn", n_filters=3, kernel_size=3), 1, id="icnn-C1"),
    pytest.param(
        _builtin("icnn", n_filters=2, kernel_size=3, n_layers=3), 3, id="icnn-C3-L3"
    ),
    pytest.param(
        _builtin("icnn", n_filters=2, kernel_size=3, n_layers=1), 1, id="icnn-C1-L1"
    ),
]
CASES = [
    *BUILTIN_CASES,
    pytest.param(_readme, 1, id="readme-C1"),
    pytest.param(_readme, 3, id="readme-C3"),
]


def _setup(factory, channels, seed=0):
    reg = factory(channels)
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


def _central(f, point, direction, t=1e-6):
    """Central difference of ``f`` at ``point`` along ``direction``."""
    return (f(point + t * direction) - f(point - t * direction)) / (2 * t)


@pytest.mark.parametrize("factory,channels", CASES)
def test_gradient_matches_finite_differences(factory, channels):
    reg, theta, x, gen = _setup(factory, channels)
    d = torch.randn(x.shape, generator=gen, dtype=torch.float64)
    fd = _central(lambda z: reg.value(z, theta), x, d)
    assert _rel((reg.grad(x, theta) * d).flatten(1).sum(1), fd) < 1e-6


@pytest.mark.parametrize("factory,channels", CASES)
def test_hvp_matches_finite_differences(factory, channels):
    reg, theta, x, gen = _setup(factory, channels)
    v = torch.randn(x.shape, generator=gen, dtype=torch.float64)
    fd = _central(lambda z: reg.grad(z, theta), x, v)
    assert _rel(reg.hessian(x, theta)(v), fd) < 1e-5
    # the cached operator applied to a subset of rows agrees with the full one
    hess = reg.hessian(x, theta)
    rows = torch.tensor([1])
    assert torch.allclose(hess(v[rows], rows), hess(v)[rows])


@pytest.mark.parametrize("factory,channels", CASES)
def test_mixed_product_matches_finite_differences(factory, channels):
    reg, theta, x, gen = _setup(factory, channels)
    q = torch.randn(x.shape, generator=gen, dtype=torch.float64)
    d = torch.randn(theta.shape, generator=gen, dtype=torch.float64)
    fd = _central(lambda th: (reg.grad(x, th) * q).flatten(1).sum(1), theta, d)
    rows = reg.mixed(x, theta, q, per_image=True)
    assert rows.shape == (2, theta.numel())
    assert _rel(rows @ d, fd) < 1e-5
    assert torch.allclose(reg.mixed(x, theta, q), rows.sum(0))


@pytest.mark.parametrize("factory,channels", CASES)
def test_convex_first_order_condition(factory, channels):
    reg, theta, x, gen = _setup(factory, channels)
    for _ in range(5):
        x2 = torch.rand(x.shape, generator=gen, dtype=torch.float64) * 2 - 0.5
        gap = (
            reg.value(x2, theta)
            - reg.value(x, theta)
            - (reg.grad(x, theta) * (x2 - x)).flatten(1).sum(1)
        )
        assert bool((gap >= -1e-10).all())


@pytest.mark.parametrize("factory,channels", CASES)
def test_lipschitz_bound_holds_on_random_directions(factory, channels):
    reg, theta, x, gen = _setup(factory, channels)
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


@pytest.mark.parametrize("factory,channels", CASES)
def test_parameter_layout(factory, channels):
    reg = factory(channels)
    theta = reg.init_theta(4, dtype=torch.float64)
    assert theta.shape == (reg.n_params,) and bool(torch.isfinite(theta).all())
    assert torch.equal(reg.init_theta(4, dtype=torch.float64), theta)
    # the initial theta is feasible and the projection is idempotent
    torch.testing.assert_close(reg.project(theta), theta, rtol=0, atol=1e-15)
    moved = reg.project(theta + 0.5)
    torch.testing.assert_close(reg.project(moved), moved, rtol=0, atol=1e-15)
    # the views of unpack are views of theta (writing them writes theta),
    # one per block of the layout, together covering every entry once
    index = torch.arange(reg.n_params, dtype=torch.float64)
    blocks = {}
    for val in reg.unpack(index).values():
        for view in val if isinstance(val, list) else [val]:
            if view._base is index:
                blocks[id(view)] = view
    assert len(blocks) == len(reg.layout)
    entries = torch.cat([v.flatten() for v in blocks.values()]).sort().values
    assert torch.equal(entries, index)


@pytest.mark.parametrize("factory,channels", BUILTIN_CASES)
def test_analytic_overrides_match_the_autograd_defaults(factory, channels):
    # the base class's generic gradient and Hessian (torch.func) agree with
    # each regulariser's analytic hot paths
    reg, theta, x, gen = _setup(factory, channels)
    v = torch.randn(x.shape, generator=gen, dtype=torch.float64)
    # (1e-8, not 1e-14: F.softplus is linear above its threshold 20, where
    # the ICNN's analytic sigma' = sigmoid(20) = 1 - 2e-9)
    assert _rel(reg.grad(x, theta), Regulariser.grad(reg, x, theta)) < 1e-8
    hvp = Regulariser.hessian(reg, x, theta)(v)
    assert _rel(reg.hessian(x, theta)(v), hvp) < 1e-8
    # the analytic Hessian is not the autograd one by accident: change theta
    other = reg.project(theta + 0.1 * torch.randn(theta.shape, generator=gen).double())
    assert _rel(reg.hessian(x, other)(v), hvp) > 1e-6


@pytest.mark.parametrize("name", ["foe", "crr", "icnn"])
def test_zero_mean_1x1_filters_are_refused_in_grayscale(name):
    # a zero-mean 1x1 filter of one channel is identically zero (NaN theta0)
    with pytest.raises(ValueError, match=r"kernel_size must be an odd integer >= 3"):
        make_regulariser(name, 1, n_filters=2, kernel_size=1)
    # in colour the zero-mean 1x1 filters are not degenerate
    reg = make_regulariser(name, 3, n_filters=2, kernel_size=1)
    theta = reg.project(reg.init_theta(0, dtype=torch.float64))
    assert bool(torch.isfinite(theta).all())
    assert float(reg.unpack(theta)["filters"].abs().max()) > 0.1


@pytest.mark.parametrize("padding", [None, 0])
@pytest.mark.parametrize("channels", [1, 3])
def test_convolution_adjoint_dot_product(channels, padding):
    gen = torch.Generator().manual_seed(3)
    for s in (1, 3, 5, 7):
        pad = s // 2 if padding is None else padding
        filters = torch.randn(4, channels, s, s, generator=gen, dtype=torch.float64)
        x = torch.randn(2, channels, 11, 13, generator=gen, dtype=torch.float64)
        u = torch.randn(
            2, 4, 11 + 2 * pad - s + 1, 13 + 2 * pad - s + 1, generator=gen
        ).double()
        lhs = (correlate(x, filters, padding) * u).sum()
        rhs = (x * correlate_t(u, filters, padding)).sum()
        assert abs(float(lhs - rhs)) <= 1e-12 * abs(float(lhs))
        # the same zero-padded correlation as torch's conv2d, and the adjoint
        # is torch's conv_transpose2d
        assert torch.equal(
            correlate(x, filters, padding), F.conv2d(x, filters, padding=pad)
        )
        assert torch.allclose(
            correlate_t(u, filters, padding),
            F.conv_transpose2d(u, filters, padding=pad),
            rtol=1e-12,
            atol=1e-12,
        )


@pytest.mark.parametrize(
    "reg",
    [
        FieldsOfExperts(3, n_filters=5, kernel_size=3),
        ConvexRidge(1, n_filters=4, kernel_size=3),
        ConvexRidge(3, n_filters=2, kernel_size=3, hidden=()),
    ],
    ids=["foe", "crr", "crr-one-layer"],
)
def test_ridge_projection_zero_mean_first_layer(reg):
    theta = reg.init_theta(1, dtype=torch.float64) + 0.3
    proj = reg.project(theta)
    first = reg.unpack(proj)["filters"]
    assert first.shape == (reg.channels[1], reg.n_channels, 3, 3)
    assert first.mean(dim=(1, 2, 3)).abs().max() < 1e-14
    torch.testing.assert_close(reg.project(proj), proj, rtol=0, atol=1e-15)
    # later layers and profile parameters are untouched
    n_first = first.numel()
    assert torch.equal(proj[n_first:], theta[n_first:])
    # W ignores constant images away from the border (everywhere for the
    # "valid" and "mirror" boundaries), so does grad R
    const = torch.full((1, reg.n_channels, 20, 20), 0.4, dtype=torch.float64)
    r = reg.composite_size - 1 if reg.boundary == "same" else 0
    assert reg.grad(const, proj)[..., r : 20 - r, r : 20 - r].abs().max() < 1e-10
    # the initial filters are reproducible; Gaussian ones depend on the seed,
    # FoE's difference and DCT starts do not
    assert torch.equal(reg.init_theta(7), reg.init_theta(7))
    same = torch.equal(reg.init_theta(7), reg.init_theta(8))
    assert same == isinstance(reg, FieldsOfExperts)


@pytest.mark.parametrize("boundary", ["valid", "mirror"])
def test_foe_is_the_one_layer_ridge_with_the_phi_eps_profile(boundary):
    # the FoE energy by its definition, sum_k exp(a_k) sum_p phi_eps_k(c_k * x)
    # over the cliques p that lie inside the image (Roth and Black, "valid")
    # or over every pixel of the half-sample symmetric extension ("mirror",
    # numpy's "symmetric" padding)
    reg = FieldsOfExperts(1, n_filters=3, kernel_size=5, boundary=boundary)
    theta = reg.project(reg.init_theta(2, dtype=torch.float64))
    views = reg.unpack(theta)
    assert [key for key, _ in reg.layout] == ["layers", "log_weights", "log_smoothings"]
    x = torch.rand(2, 1, 9, 9, generator=torch.Generator().manual_seed(0)).double()
    if boundary == "mirror":
        padded = np.pad(x.numpy(), ((0, 0), (0, 0), (2, 2), (2, 2)), mode="symmetric")
        u = F.conv2d(torch.from_numpy(padded), views["filters"])
        assert u.shape[-2:] == (9, 9)
    else:
        u = F.conv2d(x, views["filters"])
        assert u.shape[-2:] == (5, 5)
    eps = torch.exp(views["log_smoothings"]).view(1, -1, 1, 1)
    phi = torch.sqrt(u**2 + eps**2) - eps
    expected = (torch.exp(views["log_weights"]).view(1, -1, 1, 1) * phi).sum((1, 2, 3))
    torch.testing.assert_close(reg.value(x, theta), expected, rtol=1e-13, atol=0)


def test_unknown_regulariser():
    with pytest.raises(ValueError, match="regulariser must be one of"):
        make_regulariser("nope", 1)


# -- every regulariser: the objective's constructor call ----------------------
@pytest.mark.parametrize("name", [*REGULARISERS, "readme"])
def test_objective_constructor_call(name):
    # the objective always passes n_filters and kernel_size
    cls = readme_regulariser() if name == "readme" else REGULARISERS[name]
    reg = cls(1, n_filters=3, kernel_size=3)
    theta = reg.project(reg.init_theta(0, dtype=torch.float64))
    views = reg.unpack(theta)
    if "filters" in views:
        # first-layer filters (K, C, s, s) for the filter plot
        assert views["filters"].ndim == 4 and views["filters"].shape[1:] == (1, 3, 3)
    x = torch.rand(1, 1, 8, 8, dtype=torch.float64)
    assert reg.grad(x, theta).shape == x.shape
    assert reg.value(x, theta).shape == (1,)


@pytest.mark.parametrize(
    "name,kwargs,match",
    [
        ("foe", {"n_filters": 0}, "n_filters must be >= 1"),
        ("foe", {"kernel_size": 4}, "kernel_size must be a positive odd"),
        ("foe", {"init_smoothing": 0.0}, "init_smoothing must be > 0"),
        ("foe", {"boundary": "same"}, "boundary must be one of"),
        ("foe", {"init": "gaussian"}, "init must be one of"),
        ("crr", {"boundary": "valid"}, "boundary must be one of"),
        ("tv", {"init_smoothing": 0.0}, "init_smoothing must be > 0"),
        ("tv", {"log_scale": -1.0}, "log_scale must be > 0"),
        ("crr", {"kernel_size": 4}, "kernel_size must be a positive odd"),
        ("crr", {"n_filters": 0}, "n_filters must be >= 1"),
        ("crr", {"hidden": (4, 0)}, "hidden channels must be >= 1"),
        ("crr", {"filter_scale": 0.0}, "filter_scale must be > 0"),
        ("icnn", {"n_layers": 0}, "n_layers must be >= 1"),
        ("icnn", {"smoothing": 0.0}, "smoothing must be > 0"),
        ("icnn", {"kernel_size": 2}, "kernel_size must be a positive odd"),
        ("icnn", {"bias_scale": -1.0}, "bias_scale must be > 0"),
    ],
)
def test_bad_parameters(name, kwargs, match):
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
    # (3x3 kernels on a 1x1 image: only the centre taps act)
    reg = ICNN(1, n_filters=2, kernel_size=3, n_layers=2, smoothing=0.1, init_scale=1)
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
