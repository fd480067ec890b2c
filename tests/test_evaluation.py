"""The objective's evaluation machinery (README "Evaluation cost").

- :func:`objective.psnr` is deepinv's PSNR bit for bit;
- the cached first evaluation (theta0, cold starts) replays exactly what a
  fresh objective computes, for every row of a second and third run;
- the reference columns ``psnr_test_measurement`` and ``psnr_test_init``
  are the PSNR of the measurements and of theta0, constant over a run;
- ``n_threads`` sets torch's thread count and refuses bad values.
"""

import math

import pytest
import torch
from bench_helpers import (
    _context,
    get_dataset,
    get_objective,
    get_solver,
    run_for,
    setup_run,
)

SMALL = {"n_train": 4, "n_test": 2, "patch_size": 16}
OBJ = {"budget": 1500, "n_checkpoints": 5, "n_filters": 2}


def _rows(objective, solver, n_callbacks=10):
    """The rows benchopt would write for one run of ``solver``."""
    rows = []

    def callback():
        rows.append(objective.evaluate_result(**solver.get_result()))
        return len(rows) < n_callbacks

    solver.run(callback)
    return rows


def _solver_for(objective, task, name):
    """Solver ``name`` on ``objective``, seeded as ``setup_run`` seeds it."""
    dataset = get_dataset(task, **SMALL)
    solver = get_solver(name)
    solver._run_context = _context(0, 0, dataset, objective, solver)
    solver.set_objective(**objective.get_objective())
    return solver


def _same(rows_a, rows_b):
    assert len(rows_a) == len(rows_b)
    for a, b in zip(rows_a, rows_b, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            va, vb = a[key], b[key]
            if isinstance(va, float) and math.isnan(va):
                assert math.isnan(vb), key
            else:
                assert va == vb, (key, va, vb)


def test_psnr_is_deepinv_psnr_bit_for_bit():
    import deepinv as dinv

    from objective import psnr

    gen = torch.Generator().manual_seed(0)
    clean = torch.rand(5, 3, 9, 7, generator=gen)
    noisy = (clean + 0.1 * torch.randn(5, 3, 9, 7, generator=gen)).clamp(0, 1)
    ref = dinv.metric.PSNR(max_pixel=1.0)(noisy, clean)
    assert torch.equal(psnr(noisy, clean), ref)
    assert torch.equal(psnr(clean, clean), ref.new_full((5,), 80.0))


@pytest.mark.parametrize("task", ["denoising", "inpainting"])
def test_cached_first_evaluation_replays_a_fresh_one(task):
    objective, solver = setup_run(
        "ISGD", dataset_name=task, dataset_params=SMALL, objective_params=OBJ
    )
    first = _rows(objective, solver)
    calls = {"n": 0}
    evaluate = objective._evaluate

    def counted(theta):
        calls["n"] += 1
        return evaluate(theta)

    objective._evaluate = counted
    # a second and third run on the same objective: theta0 is not solved again
    # (one row fewer solved than rows written), rows identical to a fresh
    # objective's, whose first evaluation is computed
    again = _rows(objective, solver)
    assert len(again) >= 3
    assert calls["n"] == len(again) - 1
    _same(first, again)
    replayed = _rows(objective, _solver_for(objective, task, "SOBA"))
    fresh_obj, fresh_solver = setup_run(
        "SOBA", dataset_name=task, dataset_params=SMALL, objective_params=OBJ
    )
    _same(replayed, _rows(fresh_obj, fresh_solver))
    # the cache holds its own copies: the runs did not move its warm starts
    cache = fresh_obj._init_eval
    assert cache is not None
    assert all(
        x.data_ptr() != mem.x.data_ptr()
        for which, x in cache["memory"].items()
        for mem in [fresh_obj._memory[which]]
    )


def test_reference_columns():
    objective, solver = setup_run(
        "ISGD",
        dataset_name="deblurring",
        dataset_params=SMALL,
        objective_params=OBJ,
    )
    rows = _rows(objective, solver)
    assert len(rows) >= 3
    # measured PSNR by hand: 10 log10(1 / MSE) of the clamped measurements
    y, x = objective.y_test.double().clamp(0, 1), objective.x_test.double()
    mse = (y - x).pow(2).flatten(1).mean(dim=1)
    by_hand = float((10 * torch.log10(1 / mse)).mean())
    for row in rows:
        assert row["psnr_test_measurement"] == pytest.approx(by_hand, abs=1e-4)
        assert row["psnr_test_init"] == rows[0]["psnr_test"]
    assert rows[-1]["psnr_test"] != rows[0]["psnr_test"]


def test_init_reference_without_a_first_evaluation():
    """A row with n_outer > 0 first still gets theta0's PSNR, warm starts intact."""
    objective, solver = setup_run(
        "ISGD", dataset_name="denoising", dataset_params=SMALL, objective_params=OBJ
    )
    result = run_for(solver, 2)
    ref_obj, ref_solver = setup_run(
        "ISGD", dataset_name="denoising", dataset_params=SMALL, objective_params=OBJ
    )
    init = _rows(ref_obj, ref_solver, n_callbacks=1)[0]["psnr_test"]
    row = objective.evaluate_result(**result)
    assert row["psnr_test_init"] == init
    assert objective._memory["test"].x.data_ptr() != (
        objective._init_eval["memory"]["test"].data_ptr()
    )


def test_n_threads_sets_torch_threads():
    before = torch.get_num_threads()
    try:
        objective, _ = setup_run(
            "ISGD",
            dataset_params=SMALL,
            objective_params={**OBJ, "n_threads": 1},
        )
        assert torch.get_num_threads() == 1
        from objective import TORCH_DEFAULT_THREADS

        setup_run(
            "ISGD",
            dataset_params=SMALL,
            objective_params={**OBJ, "n_threads": "auto"},
        )
        assert torch.get_num_threads() == TORCH_DEFAULT_THREADS
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "two", True, None, 10**6])
def test_n_threads_refused(bad):
    before = torch.get_num_threads()
    objective = get_objective(**OBJ, n_threads=bad)
    objective.set_data(**get_dataset("denoising", **SMALL).get_data())
    with pytest.raises(ValueError, match="n_threads"):
        objective.get_objective()
    assert torch.get_num_threads() == before
