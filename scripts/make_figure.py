"""Results figure, numbers and rankings of docs/results.md, from result files.

Reads benchopt result files and draws, per dataset, the median over
repetitions (and the 20-80 % band) of each solver's test PSNR against the
cost in lower-level gradient evaluations (``cost = ll_grad + hvp``, per
image; the papers' unit) and, when the files have the ``objective_work``
column, against the work in gradient-equivalents (every oracle priced,
docs/maths.md), plus the training loss against the cost; each repetition is
cut at the budget as in the report's ``cost_curve`` plot (docs/report.md),
with the same short legend labels and reference lines.
``--rankings`` prints, per dataset, the solvers ranked by the median test
PSNR reached at fractions of the largest x reached on each axis (cost,
work), and which pairs swap between the axes.
``--numbers`` prints, instead of drawing, the numbers quoted in
docs/results.md: per dataset and
solver the test PSNR at the initial theta and at the budget (medians over
repetitions), the cost at which the median curve first reaches each
``--levels`` PSNR, the status of the last rows and the solver time, the
reference levels (measurement, initial theta) when the file has them, and
the total solver time of the file.

Usage::

    python scripts/make_figure.py outputs/<run>.parquet [more.parquet ...] \
        -o docs/results.png
    python scripts/make_figure.py outputs/<run>.parquet --numbers --levels 26 27

Several result files (e.g. runs of different solvers on the same problem)
are concatenated; a solver present in several keeps its first file's runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark_utils.plot_utils import (  # noqa: E402
    REFERENCE_STYLES,
    aggregate,
    first_reach,
    mpl_style,
    one_curve,
    reference_values,
    run_budget,
    short_labels,
    solver_styles,
    status_tag,
)

#: (x column, y column, y label, y scale, x label)
PANELS = (
    (
        "objective_cost",
        "objective_psnr_test",
        "test PSNR [dB]",
        "linear",
        "cost: lower-level gradients + HVPs (per image)",
    ),
    (
        "objective_work",
        "objective_psnr_test",
        "test PSNR [dB]",
        "linear",
        "work: all oracles, in gradient-equivalents (per image)",
    ),
    (
        "objective_cost",
        "objective_value",
        "train loss (MSE)",
        "log",
        "cost: lower-level gradients + HVPs (per image)",
    ),
)


def band_curve(runs, col, budget, x_col="objective_cost"):
    """Median, 20 % and 80 % quantiles over the repetitions of ``col``."""
    curves = [
        one_curve(rep, x_col, col, budget=budget) for _, rep in runs.groupby("idx_rep")
    ]
    return aggregate([c for c in curves if c is not None])


def median_curve(runs, col, budget, x_col="objective_cost"):
    """Median over the repetitions of ``runs`` of ``col`` against ``x_col``."""
    x, median, _, _ = band_curve(runs, col, budget, x_col)
    return x, median


def rankings(df, fractions=(0.25, 1.0)):
    """Markdown: solvers ranked by median test PSNR at equal cost and work.

    On each axis the x values compared are fractions of the smallest final x
    over the solvers (so that every solver has reached them: at equal cost,
    or at equal work); a solver's value is its median curve interpolated
    there. Pairs of solvers ordered differently on the two axes are listed.
    """
    axes = [a for a in ("objective_cost", "objective_work") if a in df.columns]
    lines = []
    for dataset, sub in df.groupby("dataset_name", sort=True):
        budget = run_budget(sub)
        labels = short_labels(sub["solver_name"].unique())
        name = dataset.split("[")[0]
        order = {}
        for axis in axes:
            curves = {
                labels[s]: median_curve(r, "objective_psnr_test", budget, axis)
                for s, r in sub.groupby("solver_name", sort=True)
            }
            end = min(float(x[-1]) for x, _ in curves.values())
            for frac in fractions:
                at = frac * end
                vals = {k: float(np.interp(at, x, y)) for k, (x, y) in curves.items()}
                ranked = sorted(vals, key=vals.get, reverse=True)
                order[(axis, frac)] = ranked
                text = ", ".join(f"{k} {vals[k]:.2f}" for k in ranked)
                lines.append(f"- {name}, {axis[10:]} = {at:,.0f}: {text}")
        if len(axes) == 2:
            for frac in fractions:
                a = order[("objective_cost", frac)]
                b = order[("objective_work", frac)]
                swaps = [
                    f"{p} / {q}"
                    for i, p in enumerate(a)
                    for q in a[i + 1 :]
                    if b.index(p) > b.index(q)
                ]
                lines.append(
                    f"- {name}, at {frac:g} of the axis: "
                    + (
                        "pairs ordered differently by work than by cost: "
                        + ", ".join(swaps)
                        if swaps
                        else "same ranking on both axes"
                    )
                )
    return "\n".join(lines)


def numbers(df, levels):
    """Markdown table of the numbers of docs/results.md (see the module doc)."""
    head = ["dataset", "solver", "PSNR at 0", "PSNR at budget"]
    head += [f"cost to {v:g} dB" for v in levels] + ["status", "time [s]"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for dataset, sub in df.groupby("dataset_name", sort=True):
        budget = run_budget(sub)
        labels = short_labels(sub["solver_name"].unique())
        for solver, runs in sub.groupby("solver_name", sort=True):
            x, median = median_curve(runs, "objective_psnr_test", budget)
            last = runs.sort_values("stop_val").groupby("idx_rep").last()
            reach = [first_reach(x, median, v) for v in levels]
            row = [dataset.split("[")[0], labels[solver]]
            row += [f"{median[0]:.2f}", f"{median[-1]:.2f}"]
            row += ["-" if np.isnan(c) else f"{c:.0f}" for c in reach]
            row += [
                status_tag(runs).strip(" ()") or "ok",
                f"{last['time'].median():.1f}",
            ]
            lines.append("| " + " | ".join(row) + " |")
        for label, value in reference_values(sub, "psnr_test"):
            row = [dataset.split("[")[0], f"({label})", "", f"{value:.2f}"]
            lines.append("| " + " | ".join(row + [""] * (len(head) - 4)) + " |")
    total = (
        df.sort_values("stop_val")
        .groupby(["dataset_name", "solver_name", "idx_rep"])["time"]
        .last()
    )
    lines.append("")
    lines.append(
        f"{len(total)} runs, budget {run_budget(df):,.0f}, "
        f"total solver time {total.sum():.0f} s"
    )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("result", nargs="+", help="benchopt parquet/csv files")
    parser.add_argument("-o", "--output", default="docs/results.png")
    parser.add_argument(
        "--numbers", action="store_true", help="print the numbers, no figure"
    )
    parser.add_argument(
        "--rankings",
        action="store_true",
        help="print the rankings at equal cost and at equal work, no figure",
    )
    parser.add_argument(
        "--levels",
        type=float,
        nargs="*",
        default=[26.0, 27.0],
        help="test PSNR levels [dB] for the cost-to-reach columns",
    )
    args = parser.parse_args(argv)
    frames, seen = [], set()
    for path in args.result:
        df = pd.read_csv(path) if path.endswith(".csv") else pd.read_parquet(path)
        keys = df["dataset_name"] + "|" + df["solver_name"]
        frames.append(df[~keys.isin(seen)])
        seen |= set(keys)
    df = pd.concat(frames, ignore_index=True)
    if args.numbers:
        print(numbers(df, args.levels))
        return
    if args.rankings:
        print(rankings(df))
        return
    panels = [p for p in PANELS if p[0] in df.columns]
    datasets = sorted(df["dataset_name"].unique())
    fig, axes = plt.subplots(
        len(panels),
        len(datasets),
        figsize=(5.5 * len(datasets), 3.5 * len(panels)),
        squeeze=False,
    )
    for j, dataset in enumerate(datasets):
        sub = df[df["dataset_name"] == dataset]
        budget = run_budget(sub)
        labels = short_labels(sub["solver_name"].unique())
        # colours and markers fixed per solver name, as in the report
        styles = solver_styles(sub["solver_name"].unique())
        for solver, runs in sub.groupby("solver_name"):
            label = labels[solver] + status_tag(runs)
            for i, (x_col, col, ylabel, scale, xlabel) in enumerate(panels):
                ax = axes[i, j]
                x, median, low, high = band_curve(runs, col, budget, x_col)
                style = mpl_style(styles[solver], len(x))
                (line,) = ax.plot(x, median, label=label, **style)
                if low is not None:
                    ax.fill_between(x, low, high, color=line.get_color(), alpha=0.15)
                ax.set_yscale(scale)
                ax.set_ylabel(ylabel)
                ax.set_xlabel(xlabel, fontsize=8)
                ax.grid(alpha=0.3)
        for i, panel in enumerate(panels):
            if panel[1] != "objective_psnr_test":
                continue
            for label, value in reference_values(sub, "psnr_test"):
                style = REFERENCE_STYLES[label]
                axes[i, j].axhline(
                    value,
                    ls=style["mpl_linestyle"],
                    lw=1.5,
                    color=style["color"],
                    label=label,
                    zorder=3,
                )
        axes[0, j].set_title(dataset.split("[")[0])
    axes[0, -1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(args.output, dpi=120)
    print(f"saved {args.output}")


if __name__ == "__main__":
    main()
