"""The regulariser study's table (configs/paper/regularisers.yml) from its parquet.

For every task, regulariser and solver: the test PSNR at the budget (median
over repetitions, at equal cost: each curve is interpolated at the budget),
the cost and, when the parquet has it, the work needed to reach 99 % of the
final gain (the first evaluation whose test PSNR is at least
start + 0.99 (final - start), interpolated linearly between evaluations;
"99 % of the final value" in dB would be a fixed 1 % of about 28 dB and say
little), and the noisy input's PSNR and the initial theta's as references.
No choice is made from these numbers: the table reports test PSNR, the runs'
settings come from training or validation data (docs/tuning.md).

Usage::

    python tools/regulariser_study.py outputs/regularisers.parquet [--write]

With ``--write``, the table replaces the ``regulariser-study`` block of
``docs/regularisers.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]

from docblock import write_block  # noqa: E402

from benchmark_utils.plot_utils import short_labels  # noqa: E402

BLOCK = "regulariser-study"
PAGE = ROOT / "docs" / "regularisers.md"
KEYS = ["task", "regulariser", "solver"]


def _value_at(x, y, target):
    """y interpolated at x = target (the last value past the end)."""
    if target >= x[-1]:
        return float(y[-1])
    return float(np.interp(target, x, y))


def _cost_to_reach(x, y, level):
    """First x where the piecewise-linear curve (x, y) reaches ``level``."""
    above = np.nonzero(y >= level)[0]
    if above.size == 0:
        return float("nan")
    i = int(above[0])
    if i == 0:
        return float(x[0])
    x0, x1, y0, y1 = x[i - 1], x[i], y[i - 1], y[i]
    return float(x0 + (level - y0) / (y1 - y0) * (x1 - x0))


def run_rows(df):
    """One row per run (task, regulariser, solver, repetition)."""
    df = df.copy()
    df["task"] = df["dataset_name"].str.split("[").str[0]
    df["regulariser"] = df["p_obj_regulariser"]
    df["solver"] = df["solver_name"]
    has_work = "objective_work" in df
    rows = []
    for keys, curve in df.groupby([*KEYS, "idx_rep"], dropna=False):
        curve = curve.sort_values("objective_cost")
        budget = float(curve["p_obj_budget"].iloc[0])
        x = curve["objective_cost"].to_numpy(dtype=float)
        y = curve["objective_psnr_test"].to_numpy(dtype=float)
        ok = np.isfinite(y)
        x, y = x[ok], y[ok]
        status = (
            curve["objective_status"].iloc[-1] if "objective_status" in curve else ""
        )
        row = dict(zip([*KEYS, "rep"], keys, strict=True))
        row["status"] = status
        if x.size == 0:
            rows.append(row)
            continue
        final = _value_at(x, y, budget)
        start = float(y[0])
        row["psnr"] = final
        row["cost99"] = _cost_to_reach(x, y, start + 0.99 * (final - start))
        if has_work:
            w = curve["objective_work"].to_numpy(dtype=float)[ok]
            # work at the same point of the curve as cost99
            row["work99"] = (
                float(np.interp(row["cost99"], x, w))
                if np.isfinite(row["cost99"])
                else float("nan")
            )
        for ref in ("measurement", "init"):
            col = f"objective_psnr_test_{ref}"
            if col in curve:
                row[ref] = float(curve[col].iloc[0])
        rows.append(row)
    return pd.DataFrame(rows)


def summarise(df):
    """Median over repetitions per (task, regulariser, solver)."""
    runs = run_rows(df)
    agg = {"psnr": "median", "cost99": "median"}
    for col in ("work99", "measurement", "init"):
        if col in runs:
            agg[col] = "median"
    table = runs.groupby(KEYS).agg(agg)
    table["runs"] = runs.groupby(KEYS).size()
    table["not ok"] = runs.groupby(KEYS)["status"].apply(
        lambda s: int((~s.isin(["ok", "budget"])).sum())
    )
    return table.reset_index()


def markdown(table):
    """The README table: one block per task, best PSNR first."""
    lines = []
    labels = short_labels(table["solver"].unique())
    for task, group in table.groupby("task"):
        ref = ""
        if "measurement" in group:
            ref = f" (noisy input: {group['measurement'].iloc[0]:.2f} dB)"
        lines += [
            f"**{task}**{ref}",
            "",
            "| regulariser | solver | test PSNR (dB) | initial theta (dB) "
            "| cost to 99 % | work to 99 % | runs (not ok) |",
            "|---|---|---|---|---|---|---|",
        ]
        for _, r in group.sort_values("psnr", ascending=False).iterrows():
            work = (
                f"{r['work99']:,.0f}" if np.isfinite(r.get("work99", np.nan)) else "-"
            )
            init = f"{r['init']:.2f}" if np.isfinite(r.get("init", np.nan)) else "-"
            name = labels[r["solver"]]
            lines.append(
                f"| {r['regulariser']} | {name} | {r['psnr']:.2f} | {init} "
                f"| {r['cost99']:,.0f} | {work} | {r['runs']} ({r['not ok']}) |"
            )
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("parquet")
    parser.add_argument("--write", action="store_true", help=f"rewrite {PAGE.name}")
    args = parser.parse_args(argv)
    table = summarise(pd.read_parquet(args.parquet))
    block = markdown(table)
    print(block)
    if args.write:
        write_block(PAGE, BLOCK, block)
    return table


if __name__ == "__main__":
    main()
