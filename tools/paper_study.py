"""The ISGD paper's comparison (configs/paper/isgd-maid*.yml) from its runs.

Draws, per task, the median over repetitions (20-80 % band) of the training
loss, the training PSNR and the test PSNR against the cost, ISGD (fixed and
decreasing steps) against MAID (both acceptance rules), as the paper's
Figures 2 and 4 (arXiv 2412.12049), and prints the claims' numbers:

- **faster in cost**: for each ISGD repetition, the cost at which its test
  PSNR (per image) first reaches MAID's final median, as a fraction of the
  budget (NaN: never), median [min, max] over repetitions; the same for the
  training loss (the cost at which it first falls to MAID's final);
- **better test PSNR**: ISGD's final median minus MAID's, per image and
  pooled, with the bootstrap 90 % interval (a tie when it holds 0);
- the wall time of a run (solver plus evaluation) and its split.

Usage::

    python tools/paper_study.py outputs/paper-*.parquet [--write] [-o docs/paper.png]
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

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]

from docblock import write_block  # noqa: E402

from benchmark_utils.compare import at_budget, bootstrap_interval  # noqa: E402
from benchmark_utils.plot_utils import (  # noqa: E402
    band_curve,
    mpl_style,
    one_curve,
    run_budget,
    short_labels,
    solver_styles,
    thousands_axis,
)

BLOCK = "paper-isgd-maid"
PAGE = ROOT / "docs" / "paper.md"
PANELS = (
    ("objective_value", "training loss (MSE)", "log"),
    ("objective_psnr_train", "training PSNR [dB]", "linear"),
    ("objective_psnr_test", "test PSNR [dB]", "linear"),
)


def reach(runs, col, level, budget, below=False):
    """Per repetition, the first cost at which ``col`` reaches ``level``
    (falls to it with ``below``), linear between evaluations; NaN: never."""
    out = []
    for _, rep in runs.groupby("idx_rep"):
        curve = one_curve(rep, "objective_cost", col, budget=budget)
        if curve is None:
            out.append(np.nan)
            continue
        x, y = curve
        y = -y if below else y
        target = -level if below else level
        above = np.flatnonzero(y >= target)
        if above.size == 0:
            out.append(np.nan)
        elif above[0] == 0:
            out.append(float(x[0]))
        else:
            j = above[0]
            w = (target - y[j - 1]) / (y[j] - y[j - 1])
            out.append(float(x[j - 1] + w * (x[j] - x[j - 1])))
    return np.array(out)


def _cell(values, fmt="{:.2f}"):
    v = np.asarray(values, float)
    if np.all(np.isnan(v)):
        return "never"
    finite = v[np.isfinite(v)]
    text = fmt.format(np.nanmedian(v))
    if v.size > 1:
        text += f" [{fmt.format(finite.min())}, {fmt.format(finite.max())}]"
    if finite.size < v.size:
        text += f" ({v.size - finite.size} never)"
    return text


def _at(fractions):
    """ "reached at <fractions> of the budget", or "never reached"."""
    if np.all(np.isnan(np.asarray(fractions, float))):
        return "never reached"
    return f"reached at {_cell(fractions)} of the budget"


def _run_seconds(runs):
    solver, evals = [], []
    for _, rep in runs.groupby("idx_rep"):
        last = rep.sort_values("stop_val").iloc[-1]
        art = last.get("final_results")
        evals.append(art.get("eval_seconds", 0.0) if isinstance(art, dict) else 0.0)
        solver.append(float(last["time"]))
    return float(np.median(solver)), float(np.median(evals))


def claims(df):
    """Markdown: per task, the numbers of the module docstring."""
    lines = []
    for dataset, sub in df.groupby("dataset_name", sort=True):
        task = dataset.split("[")[0]
        budget = run_budget(sub)
        labels = short_labels(sub["solver_name"].unique())
        runs = {labels[s]: r for s, r in sub.groupby("solver_name")}
        lines += [
            f"**{task}** (budget {budget:,.0f})",
            "",
            "| method | test PSNR per image | pooled test PSNR | training loss "
            "| run wall time [s] (solver + evaluation) | runs (not ok) |",
            "|---|---|---|---|---|---|",
        ]
        final = {}
        for name, r in sorted(runs.items()):
            cols = {}
            for col in ("objective_psnr_test", "objective_pooled_psnr_test"):
                cols[col], ok = at_budget(r, col, budget)
            loss, _ = at_budget(r, "objective_value", budget)
            final[name] = dict(cols, loss=loss)
            solver, evals = _run_seconds(r)
            last = (
                r.sort_values("stop_val").groupby("idx_rep")["objective_status"].last()
            )
            bad = int((~last.isin(["ok", "budget"])).sum())
            lines.append(
                f"| {name} | {_cell(cols['objective_psnr_test'])} "
                f"| {_cell(cols['objective_pooled_psnr_test'])} "
                f"| {_cell(loss, '{:.5f}')} | {solver + evals:.0f} "
                f"({solver:.0f} + {evals:.0f}) | {len(last)} ({bad}) |"
            )
        lines.append("")
        for maid in [n for n in runs if n.startswith("MAID")]:
            level = np.median(final[maid]["objective_psnr_test"])
            loss = np.median(final[maid]["loss"])
            for isgd in [n for n in runs if n.startswith("ISGD")]:
                r = runs[isgd]
                cost = reach(r, "objective_psnr_test", level, budget) / budget
                lcost = reach(r, "objective_value", loss, budget, below=True) / budget
                parts = [
                    f"{maid}'s final test PSNR ({level:.2f} dB) {_at(cost)}, "
                    f"its final training loss {_at(lcost)}"
                ]
                for key, col in (
                    ("per image", "objective_psnr_test"),
                    ("pooled", "objective_pooled_psnr_test"),
                ):
                    a, b = final[isgd][col], final[maid][col]
                    low, high = bootstrap_interval(a, b)
                    diff = np.median(a) - np.median(b)
                    tie = " (a tie)" if low <= 0 <= high else ""
                    parts.append(
                        f"final test PSNR {key} {diff:+.2f} dB "
                        f"[{low:+.2f}, {high:+.2f}]{tie}"
                    )
                lines.append(f"- {isgd} against {maid}: " + "; ".join(parts))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def figure(df, path):
    """The paper's Figures 2 and 4: loss, training and test PSNR vs cost."""
    datasets = sorted(df["dataset_name"].unique())
    size = (5.5 * len(datasets), 3.3 * len(PANELS))
    fig, axes = plt.subplots(len(PANELS), len(datasets), figsize=size, squeeze=False)
    styles = solver_styles(df["solver_name"].unique())
    labels = short_labels(df["solver_name"].unique())
    for j, dataset in enumerate(datasets):
        sub = df[df["dataset_name"] == dataset]
        budget = run_budget(sub)
        for solver, runs in sub.groupby("solver_name"):
            for i, (col, ylabel, scale) in enumerate(PANELS):
                band = band_curve(runs, "objective_cost", col, budget)
                if band is None:
                    continue
                x, med, low, high = band
                ax = axes[i, j]
                (line,) = ax.plot(
                    x, med, label=labels[solver], **mpl_style(styles[solver], len(x))
                )
                if low is not None:
                    ax.fill_between(x, low, high, color=line.get_color(), alpha=0.15)
                ax.set_yscale(scale)
                ax.set_ylabel(ylabel)
                ax.set_xlabel(
                    "cost: lower-level gradients + HVPs (per image)", fontsize=8
                )
                ax.grid(alpha=0.3)
                thousands_axis(ax.xaxis)
        axes[0, j].set_title(dataset.split("[")[0])
        axes[0, j].legend(fontsize=7)  # each task has its own tuned steps
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("parquet", nargs="+")
    parser.add_argument("-o", "--output", default=str(ROOT / "docs" / "paper.png"))
    parser.add_argument("--write", action="store_true", help=f"rewrite {PAGE.name}")
    args = parser.parse_args(argv)
    from benchopt.results import read_results  # unpickles final_results

    df = pd.concat([read_results(str(p)) for p in args.parquet], ignore_index=True)
    text = claims(df)
    print(text)
    print("figure:", figure(df, args.output))
    if args.write:
        write_block(PAGE, BLOCK, text)
    return text


if __name__ == "__main__":
    main()
