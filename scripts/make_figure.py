"""Results figure and numbers of docs/results.md, from result files.

Reads benchopt result files and draws, per dataset, the median over
repetitions of each solver's test PSNR and training loss against the cost in
lower-level gradient evaluations (``cost = ll_grad + hvp``, per image), each
repetition cut at the budget as in the report's ``cost_curve`` plot
(docs/report.md), with the same short legend labels and reference lines.
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
    aggregate,
    first_reach,
    one_curve,
    reference_values,
    run_budget,
    short_labels,
    status_tag,
)

PANELS = (
    ("objective_psnr_test", "test PSNR [dB]", "linear"),
    ("objective_value", "train loss (MSE)", "log"),
)


def median_curve(runs, col, budget):
    """Median over the repetitions of ``runs`` of ``col`` against the cost."""
    curves = [
        one_curve(rep, "objective_cost", col, budget=budget)
        for _, rep in runs.groupby("idx_rep")
    ]
    x, median, _, _ = aggregate([c for c in curves if c is not None])
    return x, median


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
    datasets = sorted(df["dataset_name"].unique())
    fig, axes = plt.subplots(
        len(PANELS), len(datasets), figsize=(5.5 * len(datasets), 7), squeeze=False
    )
    for j, dataset in enumerate(datasets):
        sub = df[df["dataset_name"] == dataset]
        budget = run_budget(sub)
        labels = short_labels(sub["solver_name"].unique())
        for solver, runs in sub.groupby("solver_name"):
            label = labels[solver] + status_tag(runs)
            for i, (col, ylabel, scale) in enumerate(PANELS):
                ax = axes[i, j]
                x, median = median_curve(runs, col, budget)
                ax.plot(x, median, label=label)
                ax.set_yscale(scale)
                ax.set_ylabel(ylabel)
                ax.grid(alpha=0.3)
        for (label, value), colour in zip(
            reference_values(sub, "psnr_test"), ("black", "#404040"), strict=False
        ):
            axes[0, j].axhline(value, ls="--", lw=1, color=colour, label=label)
        axes[0, j].set_title(dataset.split("[")[0])
        axes[-1, j].set_xlabel("cost: lower-level gradients + HVPs (per image)")
    axes[0, -1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(args.output, dpi=120)
    print(f"saved {args.output}")


if __name__ == "__main__":
    main()
