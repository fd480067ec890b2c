"""Results figure, numbers and rankings of docs/results.md, from result files.

The figure: per task, the median over repetitions (and 20-80 % band) of the
per-image test PSNR and of the pooled test PSNR (-10 log10 of the test MSE,
the upper-level loss) against the cost (``ll_grad + hvp`` per image), of the
per-image test PSNR against the work (every oracle priced, docs/maths.md
section 3.3) and of the training loss against the cost; each repetition is
cut at the budget as in the report (docs/report.md), with its colours,
labels and reference lines.

``--numbers`` prints per task and solver the scores at the initial theta and
at the budget (medians over repetitions), the gains, the status and the
solver time. ``--rankings`` ranks the solvers by their median at the budget,
by per-image and by pooled test PSNR side by side, with Kendall's tau
between the two rankings; two neighbours of a ranking are a tie when the
bootstrap 90 % interval of the difference of their medians holds 0. A solver
with a repetition that did not end well (diverged, collapsed, stalled, timed
out) is listed apart and never ranked.

Usage::

    python scripts/make_figure.py outputs/<run>.parquet [more.parquet ...] \\
        -o docs/results.png [--numbers | --rankings]

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

from benchmark_utils.compare import at_budget, kendall_tau, ranking  # noqa: E402
from benchmark_utils.plot_utils import (  # noqa: E402
    REFERENCE_STYLES,
    band_curve,
    mpl_style,
    reference_values,
    run_budget,
    short_labels,
    solver_styles,
    status_tag,
)

#: the two scores of a ranking: per-image mean and pooled test PSNR
SCORES = {"per-image": "objective_psnr_test", "pooled": "objective_pooled_psnr_test"}
COST = "cost: lower-level gradients + HVPs (per image)"
#: (x column, y column, y label, y scale, x label)
PANELS = (
    ("objective_cost", "objective_psnr_test", "test PSNR [dB]", "linear", COST),
    (
        "objective_cost",
        "objective_pooled_psnr_test",
        "pooled test PSNR [dB]",
        "linear",
        COST,
    ),
    (
        "objective_work",
        "objective_psnr_test",
        "test PSNR [dB]",
        "linear",
        "work: all oracles, in gradient-equivalents (per image)",
    ),
    ("objective_cost", "objective_value", "train loss (MSE)", "log", COST),
)


def _format(names, ties, values):
    out = f"{names[0]} {np.median(values[names[0]]):.2f}" if names else ""
    for name, tie in zip(names[1:], ties, strict=True):
        out += (" = " if tie else " > ") + f"{name} {np.median(values[name]):.2f}"
    return out


def rankings(df):
    """Markdown: per task, the rankings at the budget by both scores."""
    lines = []
    for dataset, sub in df.groupby("dataset_name", sort=True):
        budget = run_budget(sub)
        labels = short_labels(sub["solver_name"].unique())
        task = dataset.split("[")[0]
        ranked, apart = {}, []
        for key, col in SCORES.items():
            if col not in sub.columns:
                continue
            values = {}
            for solver, runs in sub.groupby("solver_name", sort=True):
                vals, ok = at_budget(runs, col, budget)
                if ok:
                    values[labels[solver]] = vals
                elif key == "per-image":
                    apart.append(labels[solver] + status_tag(runs))
            names, ties = ranking(values)
            ranked[key] = names
            n_ties = sum(ties)
            lines.append(
                f"- {task}, {key} test PSNR at the budget ({'=' if n_ties else '>'}: "
                f"{n_ties} tie(s) of {len(ties)} neighbour pairs): "
                + _format(names, ties, values)
            )
        if len(ranked) == 2:
            tau = kendall_tau(ranked["per-image"], ranked["pooled"])
            lines.append(f"- {task}: Kendall tau between the two rankings {tau:.2f}")
        if apart:
            lines.append(f"- {task}, not ranked: {', '.join(apart)}")
    return "\n".join(lines)


def numbers(df):
    """Markdown table of the numbers of docs/results.md (see the module doc)."""
    head = ["task", "solver", "PSNR at 0", "PSNR at budget", "gain"]
    head += ["pooled at budget", "pooled gain", "SSIM at budget", "status", "time [s]"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for dataset, sub in df.groupby("dataset_name", sort=True):
        budget = run_budget(sub)
        labels = short_labels(sub["solver_name"].unique())
        task = dataset.split("[")[0]
        for solver, runs in sub.groupby("solver_name", sort=True):
            first = runs.sort_values("stop_val").groupby("idx_rep").first()
            last = runs.sort_values("stop_val").groupby("idx_rep").last()
            psnr, _ = at_budget(runs, "objective_psnr_test", budget)
            pooled, _ = at_budget(runs, "objective_pooled_psnr_test", budget)
            ssim, _ = at_budget(runs, "objective_ssim_test", budget)
            p0 = float(first["objective_psnr_test"].median())
            q0 = float(first["objective_pooled_psnr_test"].median())
            row = [task, labels[solver], f"{p0:.2f}", f"{np.median(psnr):.2f}"]
            row += [f"{np.median(psnr) - p0:+.2f}", f"{np.median(pooled):.2f}"]
            row += [f"{np.median(pooled) - q0:+.2f}", f"{np.median(ssim):.3f}"]
            row += [
                status_tag(runs).strip(" ()") or "ok",
                f"{last['time'].median():.1f}",
            ]
            lines.append("| " + " | ".join(row) + " |")
        for label, value in reference_values(sub, "psnr_test"):
            lines.append(f"| {task} | ({label}) | | {value:.2f} |" + " |" * 6)
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
        help="print the rankings at the budget by both scores, no figure",
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
        print(numbers(df))
        return
    if args.rankings:
        print(rankings(df))
        return
    panels = [p for p in PANELS if p[0] in df.columns and p[1] in df.columns]
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
                x, median, low, high = band_curve(runs, x_col, col, budget)
                style = mpl_style(styles[solver], len(x))
                (line,) = ax.plot(x, median, label=label, **style)
                if low is not None:
                    ax.fill_between(x, low, high, color=line.get_color(), alpha=0.15)
                ax.set_yscale(scale)
                ax.set_ylabel(ylabel)
                ax.set_xlabel(xlabel, fontsize=8)
                ax.grid(alpha=0.3)
        for i, panel in enumerate(panels):
            if panel[1] == "objective_value":
                continue
            for label, value in reference_values(sub, panel[1][len("objective_") :]):
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
