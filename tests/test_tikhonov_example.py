"""The README's Tikhonov regulariser runs every solver on every task.

The class is the README block "Adding a regulariser", registered for the
test; each solver runs benchopt's callback loop on small problems built
through the public API (dataset, objective, solver), as a cell does. MAID's
certified rule on denoising used to crash in ``lanczos_extreme`` (theta has
two entries, fewer than the Lanczos steps).
"""

import math
import warnings

import pytest
import torch

from benchmark_utils.bilevel_solver import STATUS_CODES
from benchmark_utils.regularisers import REGULARISERS
from tests.bench_helpers import (
    _context,
    benchmark,
    get_dataset,
    get_objective,
    get_solver,
    readme_code,
)

TASKS = ("denoising", "deblurring", "inpainting")
SMALL = {"n_train": 4, "n_val": 2, "n_test": 2}  # 32 x 32: the crash needs them
BUDGET = 600  # MAID (certified) reaches a second constants estimate


def solver_configs():
    """Every solver with its test_config; MAID under both acceptance rules."""
    configs = []
    for cls in benchmark().get_solvers():
        params = dict(getattr(cls, "test_config", {}))
        if cls.name == "MAID":
            # 5 Lanczos steps (the default) on a theta of 2 entries: the crash
            params.pop("const_iter", None)
            for rule in ("decrease", "certified"):
                configs.append((cls.name, {**params, "acceptance": rule}))
        else:
            configs.append((cls.name, params))
    return configs


@pytest.fixture
def tikhonov(monkeypatch):
    namespace = {"__name__": "readme_example"}
    exec(compile(readme_code("Adding a regulariser"), "README.md", "exec"), namespace)
    monkeypatch.setitem(REGULARISERS, "tikhonov", namespace["Tikhonov"])


@pytest.mark.parametrize("task", TASKS)
def test_every_solver_runs_with_the_readme_regulariser(tikhonov, task):
    dataset = get_dataset(task, **SMALL)
    objective = get_objective(regulariser="tikhonov", budget=BUDGET, n_checkpoints=2)
    objective._run_context = _context(0, 0, dataset, objective, None)
    objective.set_data(**dataset.get_data())
    configs = solver_configs()
    assert len(configs) >= 9  # the eight solvers, MAID twice
    for name, params in configs:
        solver = get_solver(name, **params)
        solver._run_context = _context(0, 0, dataset, objective, solver)
        solver.set_objective(**objective.get_objective())
        rows = []

        def callback(solver=solver, rows=rows):
            rows.append(objective.evaluate_result(**solver.get_result()))
            return True

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            solver.run(callback)
        last = rows[-1]
        statuses = {*STATUS_CODES, "collapsed"}  # collapsed: from the evaluation
        assert last["status"] in statuses and last["status"] != "timeout", name
        assert bool(torch.isfinite(solver.theta).all()), name
        assert math.isfinite(last["psnr_test"]), name
        if params.get("acceptance") == "certified":
            # the constants were estimated: finite, and L_H = 0 (quadratic R)
            consts = solver.constants
            assert math.isfinite(consts.jac_norm) and consts.jac_norm > 0, name
            assert consts.lip_hess == pytest.approx(0.0, abs=1e-6), name
