"""The regulariser study's table (configs/paper/regularisers*.yml) from its runs.

For every task, regulariser (with its objective options: filters, boundary)
and solver: the per-image and the pooled test PSNR at the budget (median over
repetitions and their range), the initial theta's, the cost and work at which
the median curve first reaches 99 % of its final gain in per-image PSNR
(the first evaluation at or above start + 0.99 (final - start), interpolated),
the solver time plus evaluation time of a run, and the runs that did not end
well. Below each task's table, every regulariser's margin over ``--against``
(TV by default) with the bootstrap 90 % interval of the difference of medians
(``benchmark_utils/compare.py``): a margin whose interval holds 0 is a tie.
No choice is made from these numbers (the runs' steps come from validation).

Usage::

    python tools/regulariser_study.py outputs/regularisers-*.parquet [--write]

With ``--write`` the table replaces the ``regulariser-study`` block of
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

from benchmark_utils.compare import at_budget, bootstrap_interval  # noqa: E402
from benchmark_utils.plot_utils import (  # noqa: E402
    band_curve,
    first_reach,
    run_budget,
    short_labels,
)

BLOCK = "regulariser-study"
PAGE = ROOT / "docs" / "regularisers.md"
SCORES = {"per-image": "objective_psnr_test", "pooled": "objective_pooled_psnr_test"}


def model_name(objective_name):
    """``foe (10 filters, mirror)``-like name of an objective's regulariser."""
    from benchopt.utils.parametrized_name_mixin import _extract_options

    params = _extract_options(objective_name)[2]
    name = str(params.get("regulariser", "foe"))
    extra = [f"{params['n_filters']} filters"] if "n_filters" in params else []
    extra += [str(params[k]) for k in ("boundary", "init") if k in params]
    if name == "tv":
        extra = []
    return f"{name} ({', '.join(extra)})" if extra else name


def _to_99(runs, budget, x_col):
    """x at which the median curve first reaches 99 % of its final gain."""
    band = band_curve(runs, x_col, SCORES["per-image"], budget)
    if band is None:
        return float("nan")
    x, y, _, _ = band
    return first_reach(x, y, y[0] + 0.99 * (y[-1] - y[0]))


def _run_seconds(runs):
    """Median over repetitions of solver time plus evaluation time of a run."""
    out = []
    for _, rep in runs.groupby("idx_rep"):
        last = rep.sort_values("stop_val").iloc[-1]
        art = last.get("final_results")
        extra = art.get("eval_seconds", 0.0) if isinstance(art, dict) else 0.0
        out.append(float(last["time"]) + float(extra))
    return float(np.median(out))


def summarise(df):
    """One row per (task, regulariser, solver), and the per-run scores."""
    df = df.copy()
    df["task"] = df["dataset_name"].str.split("[").str[0]
    df["model"] = df["objective_name"].map(model_name)
    labels = short_labels(df["solver_name"].unique())
    rows, values = [], {}
    for (task, model, solver), runs in df.groupby(["task", "model", "solver_name"]):
        budget = run_budget(runs)
        row = dict(task=task, model=model, solver=labels[solver], runs=0)
        for key, col in SCORES.items():
            vals, ok = at_budget(runs, col, budget)
            values[(task, model, labels[solver], key)] = vals
            row[key] = vals
            row["ok"] = ok
            first = runs.sort_values("stop_val").groupby("idx_rep")[col].first()
            row[f"{key} init"] = float(first.median())
        row["runs"] = runs["idx_rep"].nunique()
        statuses = runs.sort_values("stop_val").groupby("idx_rep")["objective_status"]
        row["not ok"] = int((~statuses.last().isin(["ok", "budget"])).sum())
        row["cost99"] = _to_99(runs, budget, "objective_cost")
        row["work99"] = (
            _to_99(runs, budget, "objective_work")
            if "objective_work" in runs
            else float("nan")
        )
        row["seconds"] = _run_seconds(runs)
        ref = runs.get("objective_psnr_test_measurement")
        row["measurement"] = float(ref.median()) if ref is not None else float("nan")
        rows.append(row)
    return pd.DataFrame(rows), values


def _cell(vals):
    if len(vals) > 1:
        return f"{np.median(vals):.2f} [{np.min(vals):.2f}, {np.max(vals):.2f}]"
    return f"{np.median(vals):.2f}"


def _number(value):
    return "-" if not np.isfinite(value) else f"{value:,.0f}"


def markdown(table, values, against="tv"):
    """The docs table: one block per task, best per-image PSNR first, then
    each regulariser's margin over ``against`` with its bootstrap interval."""
    lines = []
    for task, group in table.groupby("task"):
        ref = group["measurement"].iloc[0]
        lines += [
            f"**{task}** (noisy input: {ref:.2f} dB per image)",
            "",
            "| regulariser | solver | test PSNR per image (median [min, max]) "
            "| pooled test PSNR | initial theta (per image / pooled) "
            "| cost to 99 % | work to 99 % | time per run [s] | runs (not ok) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        group = group.assign(order=group["per-image"].map(np.median))
        for _, r in group.sort_values("order", ascending=False).iterrows():
            lines.append(
                f"| {r['model']} | {r['solver']} | {_cell(r['per-image'])} "
                f"| {_cell(r['pooled'])} "
                f"| {r['per-image init']:.2f} / {r['pooled init']:.2f} "
                f"| {_number(r['cost99'])} | {_number(r['work99'])} "
                f"| {r['seconds']:.0f} | {r['runs']} ({r['not ok']}) |"
            )
        base = [r for _, r in group.iterrows() if r["model"] == against]
        for _, r in group.iterrows():
            if not base or r["model"] == against:
                continue
            b = base[0]
            parts = []
            for key in SCORES:
                diff = np.median(r[key]) - np.median(b[key])
                low, high = bootstrap_interval(r[key], b[key])
                tie = " (a tie)" if low <= 0 <= high else ""
                parts.append(f"{key} {diff:+.2f} dB [{low:+.2f}, {high:+.2f}]{tie}")
            lines.append(f"- {r['model']} - {against}: " + "; ".join(parts))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("parquet", nargs="+")
    parser.add_argument("--against", default="tv")
    parser.add_argument("--write", action="store_true", help=f"rewrite {PAGE.name}")
    args = parser.parse_args(argv)
    from benchopt.results import read_results  # unpickles final_results

    df = pd.concat([read_results(str(p)) for p in args.parquet], ignore_index=True)
    table, values = summarise(df)
    block = markdown(table, values, args.against)
    print(block)
    if args.write:
        write_block(PAGE, BLOCK, block)
    return table


if __name__ == "__main__":
    main()
