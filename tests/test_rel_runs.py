"""Large-grid reliability of ``benchopt run``: reproducibility, divergence,
bad cells.

Two CLI runs of the same small grid with the same ``--seed`` (the second
lists the solvers in another order and leaves out the bad cell):

* every counter, metric and the final theta are bitwise identical, so the
  parquet of an overnight study can be regenerated and the order in which
  benchopt visits the cells does not matter;
* the two repetitions (``-r 2``) draw different mini-batches;
* ``step_size=1e8`` diverges: its curve is kept, flagged
  ``objective_diverged == 1`` on its last row, marked "(diverged)" in the
  cost_curve legend, and the other cells keep their full curves;
* ``step_size=-1`` is a bad cell: status "error" with its one-line message in
  the log, no rows, and nothing else is affected.

In-process checks (``tests/bench_helpers``) show the mechanisms: seeds and
mini-batch orders per repetition, and evaluation warm starts that never leak
from one run into the next.
"""

import os
import re
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from benchopt.results import read_results

from benchmark_utils.bilevel_solver import CAP_HIT_STEPS
from benchmark_utils.oracles import CountedOracles
from benchmark_utils.plot_utils import short_labels
from benchmark_utils.sampling import EpochSampler
from tests.bench_helpers import (
    ROOT,
    _context,
    benchmark,
    get_dataset,
    get_objective,
    get_solver,
    solver_on_problem,
    tiny_bilevel,
)

DATA = "denoising[n_train=4,n_test=2,patch_size=16]"
BUDGET = 1500
OBJ = f"Bilevel imaging[budget={BUDGET},n_checkpoints=4,n_filters=2]"
SEED = "3"
GOOD, DIVERGES = "step_size=100]", "step_size=100000000.0]"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def cli_run(args, out, *, bench=ROOT, cache=False, env=None, timeout=900):
    """``benchopt run`` in a subprocess, one thread per process.

    Returns the results (``benchopt.results.read_results``: ``final_results``
    unpacked) and the log with colours stripped.
    """
    cmd = [sys.executable, "-m", "benchopt", "run", str(bench), "--no-plot"]
    cmd += ["--output", str(out)] + ([] if cache else ["--no-cache"]) + list(args)
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    full_env.update(env or {})
    proc = subprocess.run(
        cmd, capture_output=True, text=True, cwd=bench, env=full_env, timeout=timeout
    )
    log = ANSI.sub("", proc.stdout + proc.stderr).replace("\r", "\n")
    assert proc.returncode == 0, log[-4000:]
    return read_results(out), log


def metric_columns(df):
    """Every numeric objective column (counters, metrics, diagnostics)."""
    return sorted(
        c
        for c in df.columns
        if c.startswith("objective_")
        and c != "objective_name"
        and pd.api.types.is_numeric_dtype(df[c])
    )


def sorted_rows(df):
    key = ["solver_name", "idx_rep", "stop_val"]
    return df.sort_values(key).reset_index(drop=True)


def final_thetas(df):
    """{(solver, repetition): final theta} from save_final_results."""
    out = {}
    for _, row in df.iterrows():
        if isinstance(row.get("final_results"), dict):
            out[row["solver_name"], row["idx_rep"]] = row["final_results"]["theta"]
    return out


def grid_args(steps):
    solver = f"ISGD[batch_size=2,q=0,step_size=[{steps}]]"
    return ["-d", DATA, "-o", OBJ, "-s", solver, "-n", "20", "-r", "2"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runs")
    first = cli_run(grid_args("-1,100,1e8") + ["--seed", SEED], tmp / "a.parquet")
    second = cli_run(grid_args("1e8,100") + ["--seed", SEED], tmp / "b.parquet")
    return first, second


def curve(df, suffix, rep):
    d = df[df["solver_name"].str.endswith(suffix) & (df["idx_rep"] == rep)]
    return d.sort_values("stop_val")


# -- reproducibility ------------------------------------------------------
def test_same_seed_gives_identical_curves(runs):
    (a, _), (b, _) = runs
    a, b = sorted_rows(a), sorted_rows(b)
    cols = metric_columns(a)
    for col in ("objective_cost", "objective_hvp", "objective_psnr_test"):
        assert col in cols
    assert list(a["solver_name"]) == list(b["solver_name"])
    assert list(a["stop_val"]) == list(b["stop_val"])
    pd.testing.assert_frame_equal(a[cols], b[cols], check_exact=True)
    thetas_a, thetas_b = final_thetas(a), final_thetas(b)
    assert len(thetas_a) == 4 and thetas_a.keys() == thetas_b.keys()
    for key, theta in thetas_a.items():
        np.testing.assert_array_equal(theta, thetas_b[key])
    # the timings are measured, not replayed: the runs really ran twice
    assert not np.array_equal(a["time"].to_numpy(), b["time"].to_numpy())


def test_repetitions_draw_different_minibatches(runs):
    (a, _), _ = runs
    thetas = final_thetas(a)
    # (the diverging cell may stop at its first step in both repetitions,
    # keeping the common initial theta, so only the good cell is compared)
    (name,) = {s for s in a["solver_name"] if s.endswith(GOOD)}
    assert not np.array_equal(thetas[name, 0], thetas[name, 1])
    cost0 = curve(a, GOOD, 0)["objective_cost"].tolist()
    cost1 = curve(a, GOOD, 1)["objective_cost"].tolist()
    assert cost0 != cost1  # different images sampled -> different work
    # same initial point for every repetition (objective seed only)
    first = a[a["stop_val"] == 0]
    assert first["objective_value"].nunique() == 1


# -- divergence -----------------------------------------------------------
def test_diverged_curve_is_kept_and_flagged(runs):
    (a, _), _ = runs
    for rep in (0, 1):
        div = curve(a, DIVERGES, rep)
        flags = div["objective_diverged"].tolist()
        assert len(flags) >= 2 and flags[-1] == 1 and set(flags[:-1]) == {0}
        last = div.iloc[-1]
        assert last["objective_cost"] < BUDGET
        # the last finite theta is kept and evaluated
        assert np.isfinite(last["objective_psnr_test"])
        assert np.isfinite(last["final_results"]["theta"]).all()

        good = curve(a, GOOD, rep)
        assert (good["objective_diverged"] == 0).all()
        assert good["objective_cost"].iloc[-1] >= BUDGET
        psnr = good["objective_psnr_test"].to_numpy()
        assert np.isfinite(psnr).all() and psnr.max() > psnr[0]


def _cost_curve_plot():
    (plot,) = [p for p in benchmark().get_plots() if p.name == "cost_curve"]
    return plot


def test_cost_curve_legend_marks_divergence(runs):
    (a, _), _ = runs
    plot = _cost_curve_plot()
    traces = plot.plot(
        a,
        dataset=a["dataset_name"].iloc[0],
        objective=a["objective_name"].iloc[0],
        x_axis="cost",
        y_axis="psnr_test",
    )
    labels = {t["label"] for t in traces}
    (div_name,) = {s for s in a["solver_name"] if s.endswith(DIVERGES)}
    (good_name,) = {s for s in a["solver_name"] if s.endswith(GOOD)}
    short = short_labels(a["solver_name"].unique())  # legend labels
    # the objective's reference columns add the two dashed reference lines
    references = {"measurement", "initial theta"}
    assert references <= labels
    assert labels - references == {short[div_name] + " (diverged)", short[good_name]}
    # one repetition out of two diverged
    partial = a.copy()
    rows = partial.index[partial["solver_name"].eq(div_name) & partial["idx_rep"].eq(1)]
    partial.loc[rows, "objective_diverged"] = 0
    partial.loc[rows, "objective_status"] = "ok"
    traces = plot.plot(
        partial,
        dataset=a["dataset_name"].iloc[0],
        objective=a["objective_name"].iloc[0],
        x_axis="cost",
        y_axis="value",
    )
    assert short[div_name] + " (diverged 1/2 reps)" in {t["label"] for t in traces}


# -- bad cell ---------------------------------------------------------------
def test_bad_cell_is_reported_and_isolated(runs):
    (a, log), _ = runs
    message = (
        "ValueError: ISGD: parameter step_size=-1.0 is invalid; "
        "allowed: a finite number > 0"
    )
    assert message in log
    assert re.search(r"step_size=-1\]: error", log)
    assert not a["solver_name"].str.contains("step_size=-1").any()
    assert a.groupby(["solver_name", "idx_rep"]).ngroups == 4


# -- in-process: seeds, mini-batch orders, warm starts ----------------------
SMALL = {"n_train": 4, "n_test": 2, "patch_size": 16}
OBJ_PARAMS = {"budget": 400, "n_checkpoints": 3, "n_filters": 2}


def make_run(dataset, objective, repetition, seed=0):
    """A fresh ISGD solver set up on ``objective`` for one repetition."""
    solver = get_solver("ISGD", batch_size=2, q=0.0)
    ctx = _context(seed, repetition, dataset, objective, solver)
    objective._run_context = solver._run_context = ctx
    solver.set_objective(**objective.get_objective())
    return solver


def evaluated_curve(objective, solver, n_evals=3):
    """Run ``solver`` and evaluate at each callback, as benchopt does."""
    rows = []

    def callback():
        rows.append(objective.evaluate_result(**solver.get_result()))
        return len(rows) <= n_evals

    solver.run(callback)
    rows.append(objective.evaluate_result(**solver.get_result()))
    return rows


def fresh_objective(dataset, data):
    objective = get_objective(**OBJ_PARAMS)
    objective._run_context = _context(0, 0, dataset, objective, None)
    objective.set_data(**data)
    return objective


@pytest.fixture(scope="module")
def small():
    dataset = get_dataset("denoising", **SMALL)
    return dataset, dataset.get_data()


def test_seed_and_minibatch_order_per_repetition(small):
    dataset, data = small
    objective = fresh_objective(dataset, data)
    seeds = [make_run(dataset, objective, rep).seed for rep in (0, 0, 1)]
    assert seeds[0] == seeds[1] != seeds[2]
    orders = []
    for seed in seeds:
        sampler = EpochSampler(4, 2, seed, torch.device("cpu"))
        orders.append([sampler.next().tolist() for _ in range(6)])
    assert orders[0] == orders[1] != orders[2]
    for order in orders:  # shuffled epochs: each image once per 2 batches
        for epoch in range(3):
            assert sorted(order[2 * epoch] + order[2 * epoch + 1]) == [0, 1, 2, 3]


def test_in_process_runs_are_bitwise_reproducible(small):
    dataset, data = small
    results = []
    for rep in (0, 0, 1):
        objective = fresh_objective(dataset, data)
        solver = make_run(dataset, objective, rep)
        rows = evaluated_curve(objective, solver)
        per_image = solver.oracles.counters.per_image["ll_grad"].clone()
        results.append((solver.get_result()["theta"], per_image, rows))
    (t0, c0, r0), (t1, c1, r1), (t2, c2, r2) = results
    assert torch.equal(t0, t1) and torch.equal(c0, c1) and r0 == r1
    assert not torch.equal(t0, t2)
    assert r0[-1]["cost"] > 0 and r0 != r2


def test_evaluation_does_not_depend_on_run_order(small):
    """The objective's evaluation warm starts are reset at n_outer == 0: the
    curve of a run is the same whether or not another run was evaluated
    before it on the same objective instance (a sequential benchopt run)."""
    dataset, data = small
    alone = fresh_objective(dataset, data)
    expected = evaluated_curve(alone, make_run(dataset, alone, 1))

    shared = fresh_objective(dataset, data)
    evaluated_curve(shared, make_run(dataset, shared, 0))
    after_other = evaluated_curve(shared, make_run(dataset, shared, 1))
    assert after_other == expected


# -- limits of a cell (docs/limits.md) ----------------------------------------
class BenchoptLikeCallback:
    """Evaluates at every call, as benchopt's callback with ``get_next``, and
    carries a stopping criterion with benchopt 1.10's ``_deadline``."""

    def __init__(self, objective, solver, timeout=None, eval_sleep=0.0):
        self.objective, self.solver, self.eval_sleep = objective, solver, eval_sleep
        self.stopping_criterion = SimpleNamespace(
            _deadline=None if timeout is None else time.time() + timeout
        )
        self.rows = []

    def __call__(self):
        self.rows.append(self.objective.evaluate_result(**self.solver.get_result()))
        time.sleep(self.eval_sleep)
        return True


def limited_run(small, solver_name, solver_params, budget, **callback_kw):
    """One run of ``solver_name`` on the small problem; returns its callback."""
    dataset, data = small
    objective = get_objective(budget=budget, n_checkpoints=3, n_filters=2)
    solver = get_solver(solver_name, **solver_params)
    ctx = _context(0, 0, dataset, objective, solver)
    objective._run_context = solver._run_context = ctx
    objective.set_data(**data)
    solver.set_objective(**objective.get_objective())
    callback = BenchoptLikeCallback(objective, solver, **callback_kw)
    solver.run(callback)
    return callback


@pytest.mark.parametrize(
    "name, params",
    [
        # a lower-level tolerance float32 never reaches: one step would
        # spend 10**4 iterations per image
        ("ISGD", {"eps0": 1e-7, "batch_size": 2, "q": 0.0}),
        # 10**6 inner steps per step
        ("stocBiO", {"n_inner": 10**6, "batch_size": 2}),
    ],
)
def test_step_cannot_outrun_the_budget(small, name, params):
    budget = 200
    callback = limited_run(small, name, params, budget)
    last = callback.rows[-1]
    # cut within one inner iteration: one call on the batch of 2 images
    assert budget <= last["cost"] <= budget + 2
    assert last["status"] == "budget" and last["n_outer"] == 0
    # the interrupted step is discarded: theta is theta0
    first = callback.rows[0]
    assert last["value"] == first["value"]
    assert [r["status"] for r in callback.rows[:-1]] == ["ok"] * (
        len(callback.rows) - 1
    )


def test_budget_cut_keeps_the_last_completed_step(small):
    callback = limited_run(small, "ISGD", {"batch_size": 2, "q": 0.0}, 400)
    last = callback.rows[-1]
    assert 400 <= last["cost"] <= 402 and last["n_outer"] > 0
    assert last["status"] in ("ok", "budget")


def test_deadline_bounds_a_cell_with_a_huge_budget(small):
    """benchopt checks --timeout only at evaluations; the oracles check the
    deadline at every call, less 1.5 x the longest evaluation so far, so the
    run and its final evaluation end before the deadline."""
    callback = limited_run(
        small,
        "ISGD",
        {"batch_size": 2, "q": 0.0, "eps0": 1e-7},
        10**9,
        timeout=4.0,
        eval_sleep=0.5,
    )
    ended = time.time()
    deadline = callback.stopping_criterion._deadline
    last = callback.rows[-1]
    assert last["status"] == "timeout" and last["cost"] < 10**9
    assert ended <= deadline + 0.2
    assert ended >= deadline - 2.0  # the time was used, not given up early


def _solver(name, budget=10**6, **params):
    problem, theta0 = tiny_bilevel(n_images=4, size=12)
    return solver_on_problem(name, problem, theta0, budget=budget, seed=0, **params)


def _run_steps(solver, n_callbacks=2):
    results = []

    def callback():
        results.append(solver.get_result())
        return len(results) <= n_callbacks

    solver.run(callback)
    return results


def test_exploding_lipschitz_bound_is_flagged():
    """L(theta) grows 8100x (FoE smoothings e^-9 smaller) while the loss does
    not explode: flagged by the constant, not by the loss."""
    solver = _solver("ISGD", batch_size=2, q=0.0, step_size=1.0)
    step = solver.step
    shrink = {"at": 3}

    def step_then_shrink():
        step()
        if solver.n_outer + 1 == shrink["at"]:
            theta = solver.theta.clone()
            solver.oracles.unpack(theta)["log_smoothings"].sub_(9.0)
            solver.theta = theta

    solver.step = step_then_shrink
    with pytest.warns(RuntimeWarning, match="diverged"):
        result = _run_steps(solver)[-1]
    assert result["diverged"] == 1 and result["status"] == "diverged"
    assert "L(theta)" in solver.diverged_by
    assert solver.n_outer == 3
    assert solver._last_loss < 1e4 * solver._loss_ref  # not the loss rule
    # the last good theta (after step 2) is kept
    assert solver.oracles.lipschitz(result["theta"]) < 10 * solver._lip_ref


def test_collapsing_strong_convexity_is_flagged(monkeypatch):
    solver = _solver("ISGD", batch_size=2, q=0.0, step_size=1.0)
    theta0 = solver.theta0.clone()
    original = CountedOracles.strong_convexity

    def collapsing(self, theta=None):
        m = original(self, theta)
        return m if theta is None or torch.equal(theta, theta0) else m / 1e4

    monkeypatch.setattr(CountedOracles, "strong_convexity", collapsing)
    with pytest.warns(RuntimeWarning, match="diverged"):
        result = _run_steps(solver)[-1]
    assert result["status"] == "diverged" and "m(theta)" in solver.diverged_by
    assert solver.n_outer == 1


def test_repeated_cap_hits_are_flagged(monkeypatch):
    import benchmark_utils.hypergradient as hypergradient

    solve = hypergradient.solve_lower_level

    def capped(*args, **kwargs):  # every lower-level solve stops at 3 steps
        return solve(*args, **{**kwargs, "max_iter": 3, "warn": False})

    monkeypatch.setattr(hypergradient, "solve_lower_level", capped)
    solver = _solver("ISGD", batch_size=2, q=0.0, step_size=1.0, eps0=1e-9)
    with pytest.warns(RuntimeWarning, match="diverged"):
        result = _run_steps(solver)[-1]
    assert result["status"] == "diverged" and "cap" in solver.diverged_by
    assert solver.n_outer == CAP_HIT_STEPS
    # a run whose solves converge is not flagged
    monkeypatch.setattr(hypergradient, "solve_lower_level", solve)
    solver = _solver("ISGD", budget=300, batch_size=2, q=0.0, step_size=1.0)
    assert _run_steps(solver)[-1]["status"] in ("ok", "budget")
    assert solver.n_outer > CAP_HIT_STEPS


def test_solver_stop_reason_ends_the_run_as_stalled():
    solver = _solver("ISGD", batch_size=2, q=0.0, step_size=1.0)
    step = solver.step

    def step_then_stall():
        step()
        if solver.n_outer == 1:  # the second step
            solver.stop_reason = "no step accepted"

    solver.step = step_then_stall
    with pytest.warns(RuntimeWarning, match="no step accepted"):
        results = _run_steps(solver, n_callbacks=5)
    assert results[-1]["status"] == "stalled" and solver.n_outer == 2
    # the completed step is kept, and the run stops at once
    assert torch.equal(results[-1]["theta"], solver.theta)
    assert len(results) == 2
