"""Boundaries and starts of the filter banks (``docs/regularisers.md``).

The mirror extension against numpy's ``"symmetric"`` padding, every
boundary's adjoint by the dot-product test, the mirror norm bound against
power iteration on several image sizes, and the finite-difference start.
"""

import math

import numpy as np
import pytest
import torch

from benchmark_utils.regularisers import (
    ConvexRidge,
    FieldsOfExperts,
    make_regulariser,
)
from benchmark_utils.regularisers import tv as tv_module
from benchmark_utils.regularisers.convolution import (
    BOUNDARIES,
    dct_filters,
    difference_filters,
    filter_bank,
    filter_bank_t,
    gram_norm_bound,
    mirror_fold,
    mirror_norm_bound,
    mirror_pad,
    parity_parts,
)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(("h", "w", "r"), [(5, 5, 2), (7, 4, 3), (1, 6, 2), (3, 3, 5)])
def test_mirror_pad_is_numpy_symmetric_and_fold_is_its_adjoint(h, w, r):
    # (3, 3, 5): wider than the image, the extension repeats periodically
    x = torch.randn(2, 3, h, w, generator=_gen(), dtype=torch.float64)
    pad = ((0, 0), (0, 0), (r, r), (r, r))
    expected = np.pad(x.numpy(), pad, mode="symmetric")
    assert np.array_equal(mirror_pad(x, r).numpy(), expected)
    z = torch.randn(2, 3, h + 2 * r, w + 2 * r, generator=_gen(1), dtype=torch.float64)
    lhs = float((mirror_pad(x, r) * z).sum())
    rhs = float((x * mirror_fold(z, r)).sum())
    assert abs(lhs - rhs) <= 1e-12 * abs(lhs)


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("channels", [1, 3])
def test_filter_bank_adjoint_dot_product(boundary, channels):
    gen = _gen(3)
    for s in (1, 3, 5, 7):
        kernel = torch.randn(4, channels, s, s, generator=gen, dtype=torch.float64)
        x = torch.randn(2, channels, 11, 13, generator=gen, dtype=torch.float64)
        u = filter_bank(x, kernel, boundary)
        side = (11 - s + 1, 13 - s + 1) if boundary == "valid" else (11, 13)
        assert u.shape == (2, 4, *side)
        v = torch.randn(u.shape, generator=gen, dtype=torch.float64)
        lhs = float((u * v).sum())
        rhs = float((x * filter_bank_t(v, kernel, boundary)).sum())
        assert abs(lhs - rhs) <= 1e-12 * abs(lhs)


def test_mirror_forward_difference_is_tvs_neumann_difference():
    # the half-sample reflection repeats the edge pixel, so the forward
    # difference leaving the image is 0: TV's Neumann difference exactly
    x = torch.randn(2, 1, 9, 7, generator=_gen(), dtype=torch.float64)
    kernel = difference_filters(2, 1, 3, _gen()) * math.sqrt(2)
    u = filter_bank(x, kernel, "mirror")
    d = tv_module._diff(x)[:, 0]  # (B, 2, H, W): rows, then columns
    torch.testing.assert_close(u, d, rtol=0, atol=1e-14)


def test_parity_parts_split_a_filter():
    kernel = torch.randn(3, 2, 5, 5, generator=_gen(), dtype=torch.float64)
    parts = parity_parts(kernel)
    torch.testing.assert_close(parts.sum(0), kernel, rtol=0, atol=1e-14)
    for part, (row, col) in zip(
        parts, [(1, 1), (1, -1), (-1, 1), (-1, -1)], strict=True
    ):
        torch.testing.assert_close(part.flip(-2), row * part, rtol=0, atol=0)
        torch.testing.assert_close(part.flip(-1), col * part, rtol=0, atol=0)


def _power(op, shape, gen, n_iter=300):
    """Largest eigenvalue of a symmetric PSD operator (a lower bound)."""
    v = torch.randn(shape, generator=gen, dtype=torch.float64)
    for _ in range(n_iter):
        v = op(v)
        v = v / v.norm()
    return float((op(v) * v).sum())


def _banks():
    gen = _gen(5)
    return {
        "gaussian": torch.randn(4, 1, 5, 5, generator=gen, dtype=torch.float64),
        "differences": difference_filters(6, 1, 5, gen),
        "dct": dct_filters(6, 1, 5, gen),
        "colour": torch.randn(3, 3, 3, 3, generator=gen, dtype=torch.float64),
        "differences 7x7": difference_filters(10, 1, 7, gen),
    }


@pytest.mark.parametrize("name", list(_banks()))
@pytest.mark.parametrize("side", [(5, 5), (8, 8), (17, 11), (40, 40)])
def test_mirror_bound_holds_against_power_iteration(name, side):
    kernel = _banks()[name]
    weights = torch.rand(kernel.shape[0], generator=_gen(1), dtype=torch.float64)
    weights = weights + 0.5
    bound = mirror_norm_bound(kernel, weights)

    def normal(v):
        u = filter_bank(v, kernel, "mirror") * weights.view(1, -1, 1, 1)
        return filter_bank_t(u, kernel, "mirror")

    top = _power(normal, (1, kernel.shape[1], *side), _gen(2))
    assert top <= bound * (1 + 1e-9)
    # never worse than the multiplicity bound: a pixel is copied at most
    # 4 times by the 2-D reflection (docs/regularisers.md, "Mirror bound")
    assert bound <= 4 * gram_norm_bound(kernel, weights) * (1 + 1e-12)


@pytest.mark.parametrize("channels", [1, 3])
def test_mirror_bound_is_the_gram_bound_for_one_parity_filters(channels):
    # every DCT filter is even or odd about its centre along each axis:
    # the mirror norm is then at most the Gram bound, and nearly attains it
    kernel = dct_filters(5, channels, 5, _gen())
    weights = torch.linspace(0.5, 2.0, 5, dtype=torch.float64)
    gram = gram_norm_bound(kernel, weights)
    bound = mirror_norm_bound(kernel, weights)
    assert bound == pytest.approx(gram, rel=1e-9)

    def normal(v):
        u = filter_bank(v, kernel, "mirror") * weights.view(1, -1, 1, 1)
        return filter_bank_t(u, kernel, "mirror")

    top = _power(normal, (1, channels, 40, 40), _gen(3))
    assert 0.9 * bound <= top <= bound


@pytest.mark.parametrize("init", ["diff", "dct"])
@pytest.mark.parametrize("side", [9, 24, 48])
def test_foe_mirror_lipschitz_bound_at_its_peak(init, side):
    # phi'' peaks at zero responses, so Hess R(0) is the worst case for the
    # image size; the learned-like theta moves away from the start
    reg = FieldsOfExperts(1, n_filters=6, kernel_size=5, boundary="mirror", init=init)
    theta = reg.project(reg.init_theta(0, dtype=torch.float64))
    theta = reg.project(theta + 0.2 * torch.randn(theta.shape, generator=_gen(4)))
    x = torch.zeros(1, 1, side, side, dtype=torch.float64)
    top = _power(reg.hessian(x, theta), x.shape, _gen(5))
    bound = reg.lipschitz(theta)
    assert top <= bound
    unpacked = reg.unpack(theta)
    c = torch.exp(unpacked["log_weights"] - unpacked["log_smoothings"])
    assert bound <= 4 * gram_norm_bound(reg.composite(theta), c)


def test_difference_start():
    gen = _gen()
    filters = difference_filters(10, 1, 7, gen)
    assert filters.shape == (10, 1, 7, 7)
    norms = filters.flatten(1).norm(dim=1)
    torch.testing.assert_close(norms, torch.ones(10, dtype=torch.float64))
    assert float(filters.sum(dim=(1, 2, 3)).abs().max()) < 1e-14
    # on ramps: the first-order differences see the slope along their own
    # axis, the second-order ones see none
    ii, jj = torch.meshgrid(torch.arange(9.0), torch.arange(9.0), indexing="ij")
    ramps = torch.stack((jj, ii)).double().unsqueeze(1)  # along rows, columns
    u = filter_bank(ramps, filters[:6], "valid")[..., 1, 1] * math.sqrt(2)
    expected = torch.tensor(
        [[1.0, 0.0, 1.0, -1.0, 0.0, 0.0], [0.0, 1.0, 1.0, 1.0, 0.0, 0.0]],
        dtype=torch.float64,
    )
    torch.testing.assert_close(u, expected, rtol=0, atol=1e-12)
    # the rest are the lowest-frequency DCT filters
    torch.testing.assert_close(filters[6:], dct_filters(4, 1, 7, gen))
    # in colour, differences of the luminance; a 1x1 colour kernel has no
    # spatial difference, so the start is all DCT
    colour = difference_filters(2, 3, 3, gen)
    assert torch.equal(colour[:, 0], colour[:, 1])
    assert torch.equal(difference_filters(2, 3, 1, gen), dct_filters(2, 3, 1, gen))


def test_boundaries_and_starts_are_declared_and_checked():
    # the objective passes a boundary or a start only to a regulariser that
    # declares it; the first value of each tuple is the default
    assert FieldsOfExperts.boundaries == ("mirror", "valid")
    assert FieldsOfExperts.inits == ("diff", "dct")
    assert ConvexRidge.boundaries == ("same", "mirror")
    assert ConvexRidge.inits == ("gaussian", "diff")
    reg = make_regulariser("foe", 1)
    assert (reg.boundary, reg.init) == ("mirror", "diff")
    with pytest.raises(ValueError, match=r"boundary must be one of \('mirror'"):
        FieldsOfExperts(1, boundary="same")
    with pytest.raises(ValueError, match=r"init must be one of \('diff'"):
        FieldsOfExperts(1, init="gaussian")
    with pytest.raises(ValueError, match="boundary must be one of"):
        ConvexRidge(1, boundary="valid")
    theta = {
        init: FieldsOfExperts(1, n_filters=8, kernel_size=5, init=init).init_theta(0)
        for init in FieldsOfExperts.inits
    }
    first = {k: FieldsOfExperts(1, 8, 5).unpack(t)["filters"] for k, t in theta.items()}
    gen = _gen()
    torch.testing.assert_close(first["diff"], difference_filters(8, 1, 5, gen).float())
    torch.testing.assert_close(first["dct"], dct_filters(8, 1, 5, gen).float())
