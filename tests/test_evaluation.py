"""The evaluation machinery (benchmark_utils/evaluation.py, docs/report.md).

- :func:`benchmark_utils.metrics.psnr` is deepinv's PSNR bit for bit;
- runs that replay the cached first evaluation (theta0, cold starts) get,
  bit for bit, the rows of the uncached evaluation (a mutation that drops
  the replayed warm starts fails it);
- the reference columns ``psnr_test_measurement`` and ``psnr_test_init``
  are the PSNR of the measurements and of theta0, constant over a run;
- ``n_threads`` sets torch's thread count and refuses bad values.
"""

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

from benchmark_utils.evaluation import INIT_CACHE

SMALL = {"n_train": 4, "n_val": 1, "n_test": 2, "patch_size": 16, "image_size": 24}
OBJ = {"budget": 1500, "n_checkpoints": 5, "n_filters": 2}


def _rows(objective, solver, n_callbacks=10, results=None):
    """The rows benchopt would write for one run of ``solver``.

    ``results``, a list, receives the solver's results (theta, counters).
    """
    rows = []

    def callback():
        result = solver.get_result()
        if results is not None:
            results.append(result)
        rows.append(objective.evaluate_result(**result))
        return len(rows) < n_callbacks

    solver.run(callback)
    return rows


def _cache(objective):
    """The INIT_CACHE of the evaluation module."""
    return INIT_CACHE


def _uncached(objective, results):
    """Metric columns without the cache: cold starts, then warm starts."""
    objective.evaluation.memory = {}
    cols = []
    for result in results:
        theta = result["theta"].to(objective.train.x.dtype)
        cols.append(objective.evaluation.evaluate(theta))
    return cols


#: steps that do not diverge on these small problems (the class defaults are
#: tuned for the default ones)
STEPS = {"ISGD": {"step_size": 100.0}, "SOBA": {"step_size": 0.5}}


def _solver_for(objective, task, name):
    """Solver ``name`` on ``objective``, seeded as ``setup_run`` seeds it."""
    dataset = get_dataset(task, **SMALL)
    solver = get_solver(name, **STEPS.get(name, {}))
    solver._run_context = _context(0, 0, dataset, objective, solver)
    solver.set_objective(**objective.get_objective())
    return solver


def test_psnr_is_deepinv_psnr_bit_for_bit():
    import deepinv as dinv

    from benchmark_utils.metrics import psnr

    gen = torch.Generator().manual_seed(0)
    clean = torch.rand(5, 3, 9, 7, generator=gen)
    noisy = (clean + 0.1 * torch.randn(5, 3, 9, 7, generator=gen)).clamp(0, 1)
    ref = dinv.metric.PSNR(max_pixel=1.0)(noisy, clean)
    assert torch.equal(psnr(noisy, clean), ref)
    assert torch.equal(psnr(clean, clean), ref.new_full((5,), 80.0))


@pytest.mark.parametrize("task", ["denoising", "inpainting"])
def test_cached_first_evaluation_is_exact(task):
    """Rows of runs that replay the cached theta0 evaluation are those of the
    uncached evaluation (cold starts at theta0, then warm starts), bit for bit."""
    objective, solver = setup_run(
        "ISGD",
        STEPS["ISGD"],
        dataset_name=task,
        dataset_params=SMALL,
        objective_params=OBJ,
    )
    _rows(objective, solver)
    calls = {"n": 0}
    evaluate = objective.evaluation.evaluate

    def counted(theta):
        calls["n"] += 1
        return evaluate(theta)

    objective.evaluation.evaluate = counted
    for name in ("ISGD", "SOBA"):  # a second run of ISGD, then another solver
        results = []
        rows = _rows(objective, _solver_for(objective, task, name), results=results)
        assert len(rows) >= 3
        assert calls["n"] == len(rows) - 1  # theta0 was not solved again
        calls["n"] = 0
        fresh, _ = setup_run(
            "ISGD", dataset_name=task, dataset_params=SMALL, objective_params=OBJ
        )
        for row, cols in zip(rows, _uncached(fresh, results), strict=True):
            assert {key: row[key] for key in cols} == cols
    # the cache keeps its own copies of the warm starts
    cache = _cache(objective)[objective.evaluation.key]
    for which, x in cache["memory"].items():
        assert x.data_ptr() != objective.evaluation.memory[which].x.data_ptr()


def test_cache_is_shared_by_equal_objectives_only():
    """benchopt pickles the objective for every run: a new instance with the
    same data and parameters replays theta0; other data or parameters do not."""
    first, solver = setup_run(
        "ISGD", dataset_name="denoising", dataset_params=SMALL, objective_params=OBJ
    )
    _cache(first).clear()
    _rows(first, solver, n_callbacks=1)
    same, _ = setup_run(
        "ISGD", dataset_name="denoising", dataset_params=SMALL, objective_params=OBJ
    )
    assert same.evaluation.key == first.evaluation.key and len(_cache(first)) == 1
    others = [
        dict(dataset_params={**SMALL, "noise_level": 20.0}),
        dict(objective_params={**OBJ, "eval_tol": 2e-4}),
        dict(objective_params={**OBJ, "mu": 0.01}),
        dict(objective_params={**OBJ, "n_filters": 3}),
        dict(dataset_name="inpainting"),
    ]
    for change in others:
        args = dict(
            dataset_name="denoising", dataset_params=SMALL, objective_params=OBJ
        )
        args.update(change)
        other, _ = setup_run("ISGD", **args)
        assert other.evaluation.key != first.evaluation.key, change
    calls = {"n": 0}
    evaluate = same.evaluation.evaluate

    def counted(theta):
        calls["n"] += 1
        return evaluate(theta)

    same.evaluation.evaluate = counted
    row = same.evaluate_result(**same.get_one_result())
    assert calls["n"] == 0 and row["psnr_test"] == row["psnr_test_init"]


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
    y, x = objective.test.y.double().clamp(0, 1), objective.test.x.double()
    mse = (y - x).pow(2).flatten(1).mean(dim=1)
    by_hand = float((10 * torch.log10(1 / mse)).mean())
    pooled = float(-10 * torch.log10(mse.mean()))
    for row in rows:
        assert row["psnr_test_measurement"] == pytest.approx(by_hand, abs=1e-4)
        assert row["pooled_psnr_test_measurement"] == pytest.approx(pooled, abs=1e-4)
        for score in ("psnr_test", "pooled_psnr_test", "ssim_test"):
            assert row[f"{score}_init"] == rows[0][score]
    assert rows[-1]["psnr_test"] != rows[0]["psnr_test"]


def test_scores_by_hand():
    """Per-image PSNR is deepinv's, pooled PSNR is -10 log10 of the evaluated
    mean MSE (the upper-level loss), mse_val is the validation loss."""
    import deepinv as dinv

    objective, solver = setup_run("ISGD", dataset_params=SMALL, objective_params=OBJ)
    row = _rows(objective, solver, n_callbacks=3)[-1]
    ev = objective.evaluation
    for which in ("train", "val", "test"):
        x = ev.memory[which].x.double()  # the solutions just scored
        clean = ev.oracles[which].x_clean.double()
        mse = (x - clean).pow(2).flatten(1).mean(dim=1)
        pooled = row[f"pooled_psnr_{which}"]
        if which == "train":
            assert row["value"] == pytest.approx(float(mse.mean()), rel=1e-5)
        else:
            assert row[f"mse_{which}"] == pytest.approx(float(mse.mean()), rel=1e-5)
            ssim = dinv.metric.SSIM(max_pixel=1.0)(x.clamp(0, 1).float(), clean.float())
            assert row[f"ssim_{which}"] == pytest.approx(float(ssim.mean()), abs=1e-6)
        assert pooled == pytest.approx(float(-10 * torch.log10(mse.mean())), abs=1e-4)
        per_image = dinv.metric.PSNR(max_pixel=1.0)(
            x.clamp(0, 1).float(), clean.float()
        )
        assert row[f"psnr_{which}"] == pytest.approx(float(per_image.mean()), abs=1e-5)


def test_collapse_rule_on_a_hand_made_trajectory():
    """A run whose training loss ends above twice its best is ``collapsed``;
    the solver's own failures win; a new run forgets the best."""
    objective, _ = setup_run("ISGD", dataset_params=SMALL, objective_params=OBJ)
    ev = objective.evaluation
    ev.evaluate_init(objective.theta0)  # starts a run
    statuses = [
        ev.status(v, s)
        for v, s in [
            (1.0, "ok"),
            (0.4, "ok"),
            (0.7, "ok"),
            (0.81, "ok"),
            (0.9, "budget"),
        ]
    ]
    assert statuses == ["ok", "ok", "ok", "collapsed", "collapsed"]
    assert ev.status(0.9, "diverged") == "diverged"
    assert ev.status(0.9, "stalled") == "stalled"
    assert ev.status(float("nan"), "ok") == "ok"
    ev.evaluate_init(objective.theta0)  # a new run
    assert ev.status(0.9, "ok") == "ok"


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
    assert objective.evaluation.memory["test"].x.data_ptr() != (
        _cache(objective)[objective.evaluation.key]["memory"]["test"].data_ptr()
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
        from benchmark_utils.validation import TORCH_DEFAULT_THREADS

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
