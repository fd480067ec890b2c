"""Shared fixtures (tiny float64 bilevel problems) and the ``slow`` set.

Tests that drive ``benchopt run`` in subprocesses (end-to-end CLI, dask,
resume) carry ``@pytest.mark.slow``; so does every test that uses the
``runs`` fixture of ``tests/test_rel_runs.py`` (two CLI grids). CI runs
``-m "not slow"`` and ``-m slow`` separately; a selection with no test
(pytest's exit code 5) counts as a success.
"""

import pytest
import torch

from benchmark_utils.forward import make_forward
from benchmark_utils.oracles import CountedOracles
from benchmark_utils.regularisers import make_regulariser

# The test problems are tiny: one thread is faster and immune to
# oversubscription when other processes share the cores.
torch.set_num_threads(1)


def tiny_problem(
    task="denoising",
    n_images=3,
    n_channels=1,
    size=12,
    regulariser="foe",
    mu=None,
    seed=0,
    reg_kwargs=None,
):
    """A float64 problem small enough for finite differences and dense solves."""
    gen = torch.Generator().manual_seed(seed)
    shape = (n_channels, size, size)
    x_clean = torch.rand(n_images, *shape, generator=gen, dtype=torch.float64)
    fwd = make_forward(
        task,
        image_shape=shape,
        noise_sigma=0.1,
        kernel_size=5,
        blur_sigma=1.0,
        seed=seed,
        n_images=n_images,
        dtype=torch.float64,
    )
    y = fwd.measure(x_clean, seed=seed)
    if mu is None:
        mu = 0.0 if task == "denoising" else 0.05
    kwargs = {"n_filters": 3, "kernel_size": 3} if regulariser == "foe" else {}
    kwargs.update(reg_kwargs or {})
    reg = make_regulariser(regulariser, n_channels, **kwargs)
    return CountedOracles(reg, fwd, x_clean, y, mu=mu)


def energy(oracles, theta, x, idx):
    """E_i(x; theta) per image (``docs/maths.md`` (1.2)), for finite differences."""
    res = oracles.forward.A(x) - oracles.y[idx]
    val = 0.5 * res.flatten(1).pow(2).sum(dim=1) + oracles._reg.value(x, theta)
    return val + 0.5 * oracles.mu * x.flatten(1).pow(2).sum(dim=1)


#: fixtures that run ``benchopt run`` in a subprocess
CLI_FIXTURES = {"runs"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if CLI_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def pytest_sessionfinish(session, exitstatus):
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.OK


@pytest.fixture
def denoising_problem():
    return tiny_problem("denoising")


@pytest.fixture(params=["denoising", "deblurring"])
def any_problem(request):
    return tiny_problem(request.param)
