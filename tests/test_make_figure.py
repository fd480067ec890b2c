"""scripts/make_figure.py: rankings at equal cost and work, and the figure."""

import matplotlib.figure
import pandas as pd
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
                        "objective_value": 1.0 / (1 + cost),
                        "objective_status": "budget" if k == 2 else "ok",
                        "p_obj_budget": 100,
                        "time": float(k),
                    }
                )
    return pd.DataFrame(rows)


def test_rankings_swap_between_cost_and_work():
    text = _module().rankings(_frame(), fractions=(1.0,))
    # equal cost 100: B 22.01 > A 21.01; equal work 100 (B only reached
    # cost 33.3 there): A 21.01 > B 20.68
    assert "denoising, cost = 100: B 22.01, A 21.01" in text
    assert "denoising, work = 100: A 21.01, B 20.68" in text
    assert "pairs ordered differently by work than by cost: B / A" in text


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
