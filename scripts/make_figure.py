"""Results figure of the README: test PSNR and train loss against cost.

Reads a benchopt result file and draws, per dataset, the median over
repetitions of each solver's test PSNR and training loss against the cost in
lower-level gradient evaluations (``cost = ll_grad + hvp``, per image; the
same median as the report's ``cost_curve`` plot).

Usage::

    python scripts/make_figure.py outputs/<run>.parquet [more.parquet ...] \
        -o docs/results.png

Several result files (e.g. runs of different solvers on the same problem)
are concatenated; a solver present in several keeps its first file's runs.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark_utils.plot_utils import aggregate, one_curve  # noqa: E402

PANELS = (
    ("objective_psnr_test", "test PSNR [dB]", "linear"),
    ("objective_value", "train loss (MSE)", "log"),
)


def short_name(solver):
    """Solver name with its non-default-looking parameters kept short."""
    name, _, params = solver.partition("[")
    keep = []
    for item in params.rstrip("]").split(","):
        if re.match(r"^(q|optimizer|descent_test|schedule)=", item):
            keep.append(item)
    return name + (f"[{','.join(keep)}]" if keep else "")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("result", nargs="+", help="benchopt parquet/csv files")
    parser.add_argument("-o", "--output", default="docs/results.png")
    args = parser.parse_args(argv)
    frames, seen = [], set()
    for path in args.result:
        df = pd.read_csv(path) if path.endswith(".csv") else pd.read_parquet(path)
        keys = df["dataset_name"] + "|" + df["solver_name"]
        frames.append(df[~keys.isin(seen)])
        seen |= set(keys)
    df = pd.concat(frames, ignore_index=True)
    datasets = sorted(df["dataset_name"].unique())
    fig, axes = plt.subplots(
        len(PANELS), len(datasets), figsize=(5.5 * len(datasets), 7), squeeze=False
    )
    for j, dataset in enumerate(datasets):
        sub = df[df["dataset_name"] == dataset]
        for solver, runs in sub.groupby("solver_name"):
            diverged = bool(runs["objective_diverged"].max())
            label = short_name(solver) + (" (diverged)" if diverged else "")
            for i, (col, ylabel, scale) in enumerate(PANELS):
                ax = axes[i, j]
                curves = [
                    one_curve(rep, "objective_cost", col)
                    for _, rep in runs.groupby("idx_rep")
                ]
                x, median, _, _ = aggregate([c for c in curves if c is not None])
                ax.plot(x, median, label=label)
                ax.set_yscale(scale)
                ax.set_ylabel(ylabel)
                ax.grid(alpha=0.3)
        axes[0, j].set_title(dataset.split("[")[0])
        axes[-1, j].set_xlabel("cost: lower-level gradients + HVPs (per image)")
    axes[0, -1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(args.output, dpi=120)
    print(f"saved {args.output}")


if __name__ == "__main__":
    main()
