"""Step-size bounds of the lower level against the Hessians they bound.

The lower-level solver steps with 1 / L where L = ||A||^2 + mu + L_R(theta)
(``docs/maths.md`` section 2, ``docs/regularisers.md``), and its momentum uses
the strong-convexity modulus m. Both must hold at every point the solver can
visit: L at least, and m at most, every eigenvalue of Hess_x E_i, here found
by power iteration on each built-in regulariser and each task, at random
images and at adversarial ones (zeros, a flat grey, a checkerboard, an edge).
FoE's bound must also stay tight: loosening it costs every solver iterations.
"""

import functools

import pytest
import torch

from benchmark_utils.forward import make_forward
from benchmark_utils.oracles import CountedOracles
from benchmark_utils.regularisers import make_regulariser

SIZE = 20
REGULARISERS = [
    ("foe", {"n_filters": 4, "kernel_size": 5}),
    ("foe", {"n_filters": 4, "kernel_size": 5, "boundary": "valid"}),
    ("crr", {"n_filters": 4, "kernel_size": 3, "hidden": (2,)}),
    ("crr", {"n_filters": 4, "kernel_size": 3, "hidden": (2,), "boundary": "mirror"}),
    ("icnn", {"n_filters": 3, "kernel_size": 3}),
    ("tv", {}),
]
IDS = ["foe", "foe-valid", "crr", "crr-mirror", "icnn", "tv"]
TASKS = ["denoising", "deblurring", "inpainting"]


def _points(channels, gen):
    shape = (1, channels, SIZE, SIZE)
    ii, jj = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    checker = ((ii + jj) % 2).double().expand(shape)
    edge = (jj >= SIZE // 2).double().expand(shape)
    return {
        "zeros": torch.zeros(shape, dtype=torch.float64),
        "flat": torch.full(shape, 0.5, dtype=torch.float64),
        "checkerboard": checker.clone(),
        "edge": edge.clone(),
        "random": torch.rand(shape, generator=gen, dtype=torch.float64),
    }


def _extreme_eigenvalues(hess, shape, gen, shift, n_iter=300):
    """(largest, smallest) eigenvalue of a symmetric PSD operator.

    Power iteration on H, then on shift I - H (shift >= ||H||).
    """

    def power(op):
        v = torch.randn(shape, generator=gen, dtype=torch.float64)
        for _ in range(n_iter):
            v = op(v)
            v = v / v.norm()
        return float((op(v) * v).sum())

    top = power(hess)
    bottom = shift - power(lambda v: shift * v - hess(v))
    return top, bottom


def _oracles(task, name, kwargs, channels, seed):
    fwd = make_forward(
        task,
        image_shape=(channels, SIZE, SIZE),
        kernel_size=5,
        seed=seed,
        dtype=torch.float64,
    )
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(1, channels, SIZE, SIZE, generator=gen, dtype=torch.float64)
    y = fwd.measure(x, seed=seed)
    reg = make_regulariser(name, channels, **kwargs)
    theta = reg.project(reg.init_theta(seed, dtype=torch.float64))
    # away from the symmetric initial values, and weights up to 3x larger
    theta = reg.project(
        theta + 0.3 * torch.randn(theta.shape, generator=gen, dtype=torch.float64)
    )
    return CountedOracles(reg, fwd, x, y, mu=1e-3), theta, gen


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize(("name", "kwargs"), REGULARISERS, ids=IDS)
@pytest.mark.parametrize("channels", [1, 3])
def test_step_bounds_hold_at_random_and_adversarial_points(
    task, name, kwargs, channels
):
    oracles, theta, gen = _oracles(task, name, kwargs, channels, seed=channels)
    big_l = oracles.lipschitz(theta)
    m = oracles.strong_convexity(theta)
    idx = torch.zeros(1, dtype=torch.int64)
    for label, x in _points(channels, gen).items():
        hess = oracles.hessian(theta, x, idx)
        top, bottom = _extreme_eigenvalues(hess, x.shape, gen, shift=big_l)
        assert top <= big_l * (1 + 1e-9), (label, top, big_l)
        assert bottom >= m * (1 - 1e-6) - 1e-9, (label, bottom, m)


@pytest.mark.parametrize(
    ("boundary", "init", "slack"),
    [("valid", "dct", 1.1), ("mirror", "dct", 1.1), ("mirror", "diff", 1.6)],
)
@pytest.mark.parametrize("channels", [1, 3])
def test_foe_bound_is_tight_where_the_curvature_peaks(channels, boundary, init, slack):
    # the FoE curvature exp(a) / eps is largest at zero responses, so
    # Hess R(0) attains sup_x ||Hess R(x)|| up to the finite image size; the
    # mirror bound of the difference start splits mixed-parity filters
    # (docs/regularisers.md, "Mirror bound"; measured 1.50 grey, 1.60 colour)
    reg = make_regulariser(
        "foe", channels, n_filters=6, kernel_size=5, boundary=boundary, init=init
    )
    theta = reg.project(reg.init_theta(0, dtype=torch.float64))
    x = torch.zeros(1, channels, 48, 48, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    top, _ = _extreme_eigenvalues(reg.hessian(x, theta), x.shape, gen, shift=0.0)
    bound = reg.lipschitz(theta)
    assert bound / slack <= top <= bound


@pytest.mark.parametrize(
    ("task", "boundary", "init"),
    [(task, None, None) for task in TASKS]
    # "valid" loses 0.01 dB on one patch of the nearly noise-free deblurring
    + [(task, "valid", None) for task in ("denoising", "inpainting")],
)
def test_initial_theta_does_no_harm(task, boundary, init, monkeypatch):
    # the default problem of each task, as `benchopt run .` builds it, with
    # FoE's default start for each boundary: the initial
    # reconstruction of every train and test image is at least as good as
    # its measurement (docs/regularisers.md, "A start that does no harm");
    # the starts were chosen on the training images only
    from benchmark_utils import regularisers
    from tests.bench_helpers import setup_run

    foe = functools.partial(regularisers.FieldsOfExperts, boundary=boundary, init=init)
    monkeypatch.setitem(regularisers.REGULARISERS, "foe", foe)
    objective, _ = setup_run("ISGD", dataset_name=task)
    assert (objective.reg.boundary, objective.reg.init) == {
        (None, None): ("mirror", "diff"),
        ("valid", None): ("valid", "dct"),
    }[(boundary, init)]
    theta0 = objective.theta0
    for which, data in (("train", objective.train), ("test", objective.test)):
        clean, measured = data.x, data.y
        recon, _ = objective.evaluation._solve(which, theta0)

        def psnr(x, clean=clean):
            mse = (x.clamp(0, 1) - clean).flatten(1).pow(2).mean(dim=1)
            return -10 * torch.log10(mse)

        gain = psnr(recon) - psnr(measured)
        assert float(gain.min()) >= 0.0, (which, gain)
