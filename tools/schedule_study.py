"""Summarise the schedule study (configs/schedules.yml) from its parquet.

For every problem (dataset x regulariser) and every ISGD arm (optimizer,
schedule kind, accuracy decay p, step decay q), prints the test PSNR reached
at fixed costs (that of the last evaluation whose cost is at most the given
cost: the theta a user would hold after spending it; NaN when the curve has
no point there), the test PSNR at the evaluation with the best validation
PSNR within the budget (early stopping chosen on validation images, never on
test ones: docs/data.md), and whether the run
diverged or was cut short (timeout) before the budget. Then, averaged over
problems, the PSNR at the budget by accuracy schedule (p) and by step
schedule (q), for the SGD arms with polynomial decays: the spread across p
(q fixed) against the spread across q (p fixed) tests the paper's finding
that the accuracy schedule matters more than the step schedule (Salehi et
al., arXiv 2511.06774).

Usage::

    python tools/schedule_study.py [outputs/schedule_study.parquet]
        [--fractions 0.25 0.5 1.0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

DEFAULT = Path(__file__).resolve().parents[1] / "outputs" / "schedule_study.parquet"
ARM = ["p_solver_optimizer", "p_solver_schedule", "p_solver_p", "p_solver_q"]
PROBLEM = ["dataset_name", "p_obj_regulariser"]


def psnr_at(curve, cost, tolerance=0.05):
    """Test PSNR of the last evaluation with cost <= ``cost`` (1 + tolerance).

    The tolerance absorbs the overshoot of the step that reaches a cost
    checkpoint. NaN when the run stopped (timeout) before ``cost``.
    """
    x = curve["objective_cost"].to_numpy(dtype=float)
    y = curve["objective_psnr_test"].to_numpy(dtype=float)
    if x.size == 0 or x.max() < cost * (1 - tolerance):
        return float("nan")
    within = x <= cost * (1 + tolerance)
    return float(y[within][-1])


def _at_best_val(curve):
    """Test PSNR at the evaluation of largest validation PSNR (NaN if none)."""
    if "objective_psnr_val" not in curve.columns:
        return float("nan")  # a parquet from before the validation set
    val = curve["objective_psnr_val"].astype(float)
    if not val.notna().any():
        return float("nan")
    return float(curve["objective_psnr_test"].loc[val.idxmax()])


def summarise(df, fractions):
    """One row per (problem, arm): PSNR at fixed costs, best, flags."""
    df = df.copy()
    df["dataset_name"] = df["dataset_name"].str.split("[").str[0]
    rows = []
    for keys, curve in df.groupby(PROBLEM + ARM + ["idx_rep"], dropna=False):
        curve = curve.sort_values("objective_cost")
        budget = float(curve["p_obj_budget"].iloc[0])
        row = dict(zip(PROBLEM + ARM + ["rep"], keys, strict=True))
        for frac in fractions:
            row[f"psnr@{frac:g}"] = psnr_at(curve, frac * budget)
        within = curve[curve["objective_cost"] <= budget * 1.05]
        row["at_best_val"] = _at_best_val(within)
        row["start"] = float(curve["objective_psnr_test"].iloc[0])
        row["last"] = float(curve["objective_psnr_test"].iloc[-1])
        row["final_cost"] = int(curve["objective_cost"].iloc[-1])
        row["steps"] = int(curve["objective_n_outer"].iloc[-1])
        row["diverged"] = int(curve["objective_diverged"].max())
        row["cut"] = int(curve["objective_cost"].iloc[-1] < 0.95 * budget)
        rows.append(row)
    out = pd.DataFrame(rows)
    return out.rename(
        columns={
            "dataset_name": "task",
            "p_obj_regulariser": "reg",
            "p_solver_optimizer": "opt",
            "p_solver_schedule": "kind",
            "p_solver_p": "p",
            "p_solver_q": "q",
        }
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("parquet", nargs="?", default=str(DEFAULT))
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    args = parser.parse_args(argv)
    df = pd.read_parquet(args.parquet)
    table = summarise(df, args.fractions)
    last = f"psnr@{args.fractions[-1]:g}"
    pd.set_option("display.width", 160)
    pd.set_option("display.max_rows", 500)
    for (task, reg), group in table.groupby(["task", "reg"]):
        print(f"\n== {task}, {reg}: test PSNR (dB) at fractions of the cost budget")
        group = group.sort_values(last, ascending=False, na_position="last")
        cols = ["opt", "kind", "p", "q", *[c for c in group if c.startswith("psnr@")]]
        cols += ["at_best_val", "start", "last", "steps", "final_cost", "diverged"]
        cols += ["cut"]
        print(group[cols].to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    sgd = table[(table["opt"] == "sgd") & (table["kind"] == "poly")].copy()
    if not sgd.empty:
        # a run cut short (timeout) before the budget, typically one that blew
        # up, keeps the PSNR of its last evaluation
        sgd[last] = sgd[last].fillna(sgd["last"])
        print(
            f"\n== SGD, polynomial decays: {last} averaged over the problems "
            "(cut runs: their last PSNR)"
        )
        grid = sgd.pivot_table(index="p", columns="q", values=last, aggfunc="mean")
        print(grid.to_string(float_format=lambda v: f"{v:.2f}"))
        per_problem = sgd.groupby(["task", "reg"])

        def spread(group, fixed):
            """Mean over the values of ``fixed`` (with >= 2 arms) of max - min."""
            ranges = [
                sub[last].max() - sub[last].min()
                for _, sub in group.groupby(fixed)
                if len(sub) >= 2
            ]
            return sum(ranges) / len(ranges) if ranges else float("nan")

        spread_p = per_problem.apply(lambda g: spread(g, "q"))
        spread_q = per_problem.apply(lambda g: spread(g, "p"))
        print(
            "\nmean spread (dB) of",
            last,
            "across p at fixed q, and across q at fixed p:",
        )
        print(
            pd.DataFrame({"across p": spread_p, "across q": spread_q}).to_string(
                float_format=lambda v: f"{v:.2f}"
            )
        )
    return table


if __name__ == "__main__":
    main()
