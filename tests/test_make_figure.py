"""scripts/make_figure.py: rankings by both scores with ties, and the figure."""

import matplotlib.figure
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex

from benchmark_utils.plot_utils import REFERENCE_STYLES, SOLVER_STYLES
from tests.bench_helpers import load_script


def _module():
    return load_script("make_figure")


def _frame():
    rows = []
    # A: cheap oracles (work = cost); B: better per unit of cost but each
    # unit costs 3 gradient-equivalents, so it loses at equal work
    for solver, work_per_cost, slope in (("A[x=1]", 1.0, 1.0), ("B[x=1]", 3.0, 2.0)):
        for rep in range(3):
            for k, cost in enumerate((0, 50, 100)):
                rows.append(
                    {
                        "dataset_name": "denoising[n=1]",
                        "solver_name": solver,
                        "idx_rep": rep,
                        "stop_val": k,
                        "objective_cost": cost,
                        "objective_work": work_per_cost * cost,
                        "objective_psnr_test": 20.0 + slope * cost / 100 + 0.01 * rep,
                        "objective_pooled_psnr_test": 19.0 + slope * cost / 100,
                        "objective_value": 1.0 / (1 + cost),
                        "objective_status": "budget" if k == 2 else "ok",
                        "p_obj_budget": 100,
                        "time": float(k),
                    }
                )
    return pd.DataFrame(rows)


def _ranked_frame():
    """Three solvers at the budget: A and B a tie (spread over repetitions
    larger than their gap), C clearly below; D diverged in one repetition;
    the pooled score swaps A and B."""
    rows = []
    finals = {
        "A": [22.0, 21.0, 23.0, 22.5, 21.5],
        "B": [21.9, 21.1, 22.8, 22.4, 21.4],
        "C": [20.0, 20.1, 19.9, 20.0, 20.05],
        "D": [25.0, 25.0, 25.0, 25.0, 25.0],
    }
    for solver, vals in finals.items():
        for rep, final in enumerate(vals):
            pooled = final - (0.5 if solver == "A" else 0.0)
            status = "diverged" if solver == "D" and rep == 2 else "budget"
            for k, (cost, p) in enumerate(((0, 19.0), (100, final))):
                rows.append(
                    {
                        "dataset_name": "denoising[n=1]",
                        "solver_name": f"{solver}[x=1]",
                        "idx_rep": rep,
                        "stop_val": k,
                        "objective_cost": cost,
                        "objective_psnr_test": p,
                        "objective_pooled_psnr_test": pooled if k else 18.0,
                        "objective_status": status if k else "ok",
                        "p_obj_budget": 100,
                        "time": float(k),
                    }
                )
    return pd.DataFrame(rows)


def test_rankings_call_ties_and_list_failed_runs_apart():
    text = _module().rankings(_ranked_frame())
    lines = text.splitlines()
    per_image = next(line for line in lines if "per-image" in line)
    assert "A 22.00 = B 21.90 > C 20.00" in per_image
    pooled = next(line for line in lines if "pooled" in line)
    assert "B 21.90 = A 21.50 > C 20.00" in pooled
    assert "Kendall tau between the two rankings 0.33" in text
    assert "not ranked: D (diverged 1/5 reps)" in text
    assert "D 25" not in per_image  # never ranked by its last good theta


def test_bootstrap_interval_and_kendall_tau():
    from benchmark_utils import compare as mod

    low, high = mod.bootstrap_interval([1.0, 1.1, 0.9], [0.0, 0.1, -0.1])
    assert 0.7 < low <= high < 1.3
    low, high = mod.bootstrap_interval(np.arange(5.0), np.arange(5.0) + 0.2)
    assert low < 0 < high
    assert mod.kendall_tau(list("abc"), list("abc")) == 1.0
    assert mod.kendall_tau(list("abc"), list("cba")) == -1.0
    assert mod.kendall_tau(list("abcd"), list("bacd")) == pytest.approx(4 / 6)


def test_figure_has_the_work_panel(tmp_path):
    path = tmp_path / "r.parquet"
    _frame().to_parquet(path)
    out = tmp_path / "fig.png"
    _module().main([str(path), "-o", str(out)])
    assert out.stat().st_size > 10_000


def _colours(tmp_path, monkeypatch, df):
    """Legend label -> colour of every line of the figure drawn from ``df``."""
    figures = []
    monkeypatch.setattr(
        matplotlib.figure.Figure, "savefig", lambda fig, *a, **k: figures.append(fig)
    )
    path = tmp_path / "r.parquet"
    df.to_parquet(path)
    _module().main([str(path), "-o", str(tmp_path / "fig.png")])
    (fig,) = figures
    return {
        line.get_label(): to_hex(line.get_color())
        for ax in fig.axes
        for line in ax.get_lines()
    }


def test_figure_colours_are_fixed_per_solver(tmp_path, monkeypatch):
    """Renamed to known solvers, with and without a third one: each keeps the
    colour of SOLVER_STYLES, as in the report."""
    df = _frame().replace({"A[x=1]": "AmIGO[x=1]", "B[x=1]": "MAID[x=1]"})
    df["objective_psnr_test_init"] = 20.0
    two = _colours(tmp_path, monkeypatch, df)
    hoag = df[df["solver_name"] == "MAID[x=1]"].replace({"MAID[x=1]": "HOAG[x=1]"})
    three = _colours(tmp_path, monkeypatch, pd.concat([df, hoag]))
    assert two["AmIGO"] == three["AmIGO"] == SOLVER_STYLES["AmIGO"][0]
    assert two["MAID"] == three["MAID"] == SOLVER_STYLES["MAID"][0]
    assert three["HOAG"] == SOLVER_STYLES["HOAG"][0]
    assert two["initial theta"] == REFERENCE_STYLES["initial theta"]["color"]
