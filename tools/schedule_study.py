"""The schedule study (configs/schedules.yml) of the second ISGD paper: claims.

Reads the step sweep (one repetition per base step and arm, budget 16,000)
and the runs of each arm at its tuned step (3 repetitions at the study's
budget), and decides, for every problem (task x regulariser), the paper's
three claims (Salehi et al., arXiv 2511.06774):

1. **decreasing steps improve stability**: the share of the base steps of
   the sweep whose run failed (diverged, collapsed, stalled, timed out), for
   the fixed step (q = 0) against the decreasing one (q = 0.5), both at
   p = 0.5: holds when it is smaller for q = 0.5, does not when larger;
2. **the accuracy schedule matters more than the step schedule**: the range
   of the tuned arms' median final test PSNR over p in {0, 0.5, 1} (at
   q = 0.5) against the range over q in {0, 0.5} (at p = 0.5): holds when
   the bootstrap 90 % interval of (p range - q range), every arm's
   repetitions resampled apart, is above 0, does not hold when below, else
   a tie;
3. **Adam helps**: Adam against SGD at p = q = 0.5, both tuned: holds when
   the interval of the difference is above 0, does not hold when below.

Scores are per-image test PSNR at the budget (the paper's figure); the
pooled PSNR is printed beside. Usage::

    python tools/schedule_study.py outputs/schedules-tuning*.parquet \\
        --final outputs/sched-*.parquet [--write] [-o docs/schedules.png]
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

from benchmark_utils.compare import (  # noqa: E402
    OK_STATUS,
    at_budget,
    bootstrap_interval,
)
from benchmark_utils.plot_utils import (  # noqa: E402
    band_curve,
    run_budget,
    thousands_axis,
)

BLOCK = "paper-schedules"
PAGE = ROOT / "docs" / "paper.md"
SCORE, POOLED = "objective_psnr_test", "objective_pooled_psnr_test"


def arm(row):
    """Arm label of a run: ``sgd p=0.5 q=0`` (poly) or ``sgd log p=1 q=1``."""
    opt = str(row.get("p_solver_optimizer", "sgd"))
    kind = str(row.get("p_solver_schedule", "poly"))
    p, q = float(row["p_solver_p"]), float(row["p_solver_q"])
    log = " log" if kind == "log" else ""
    return f"{opt}{log} p={p:g} q={q:g}"


def problem(row):
    task = str(row["dataset_name"]).split("[")[0]
    return f"{task}, {row['p_obj_regulariser']}"


def _tag(df):
    df = df.copy()
    df["arm"] = df.apply(arm, axis=1)
    df["problem"] = df.apply(problem, axis=1)
    return df


def stability(sweep):
    """{(problem, arm): (failed steps, steps)} of the sweep."""
    out = {}
    for (prob, name), runs in sweep.groupby(["problem", "arm"]):
        last = runs.sort_values("stop_val").groupby("solver_name").tail(1)
        failed = int((~last["objective_status"].isin(OK_STATUS)).sum())
        out[(prob, name)] = (failed, len(last))
    return out


def finals(final):
    """{(problem, arm): dict(psnr, pooled arrays, ok, step)} of the tuned runs."""
    out = {}
    for (prob, name), runs in final.groupby(["problem", "arm"]):
        budget = run_budget(runs)
        psnr, ok = at_budget(runs, SCORE, budget)
        pooled, _ = at_budget(runs, POOLED, budget)
        step = float(runs["p_solver_step_size"].iloc[0])
        out[(prob, name)] = dict(psnr=psnr, pooled=pooled, ok=ok, step=step)
    return out


def _range(res, arms):
    """Range (max - min) of the arms' medians over their repetitions."""
    meds = [np.median(res[a]["psnr"]) for a in arms if a in res]
    return float(max(meds) - min(meds)) if len(meds) >= 2 else float("nan")


def range_difference_interval(res, p_arms, q_arms, level=0.9, n_boot=4000, seed=0):
    """Bootstrap interval of (range over ``p_arms``) - (range over ``q_arms``),
    every arm's repetitions resampled apart (as :func:`bootstrap_interval`)."""
    rng = np.random.default_rng(seed)
    arms = [a for a in (*p_arms, *q_arms) if a in res]
    boot = {}
    for a in dict.fromkeys(arms):
        v = np.asarray(res[a]["psnr"], float)
        boot[a] = np.median(rng.choice(v, (n_boot, v.size)), axis=1)

    def spread(names):
        got = np.stack([boot[a] for a in names if a in boot])
        return got.max(axis=0) - got.min(axis=0)

    tail = (1 - level) / 2
    diff = spread(p_arms) - spread(q_arms)
    return tuple(np.quantile(diff, [tail, 1 - tail]))


def claims(stab, res):
    """Markdown: the arms' table and the claims' table per problem."""
    problems = sorted({p for p, _ in res} | {p for p, _ in stab})
    lines = [
        "| problem | arm | tuned step | test PSNR per image | pooled "
        "| failed steps in the sweep |",
        "|---|---|---|---|---|---|",
    ]
    for prob in problems:
        for (p, name), r in sorted(res.items()):
            if p != prob:
                continue
            failed, n = stab.get((p, name), (0, 0))
            v, w = r["psnr"], r["pooled"]
            mark = "" if r["ok"] else " (a run did not end well)"
            lines.append(
                f"| {prob} | {name} | {r['step']:g} | {np.median(v):.2f} "
                f"[{np.min(v):.2f}, {np.max(v):.2f}]{mark} | {np.median(w):.2f} "
                f"| {failed} of {n} |"
            )
    lines += [
        "",
        "| problem | 1: decreasing steps more stable "
        "| 2: accuracy schedule matters more | 3: Adam helps |",
        "|---|---|---|---|",
    ]
    for prob in problems:
        r = {name: v for (p, name), v in res.items() if p == prob}
        s = {name: v for (p, name), v in stab.items() if p == prob}
        fixed, decr = s.get("sgd p=0.5 q=0"), s.get("sgd p=0.5 q=0.5")
        if fixed and decr:
            f_rate, d_rate = fixed[0] / fixed[1], decr[0] / decr[1]
            verdict = (
                "holds"
                if d_rate < f_rate
                else "does not hold"
                if d_rate > f_rate
                else "tie"
            )
            one = (
                f"{verdict}: failed {decr[0]}/{decr[1]} (q=0.5) "
                f"vs {fixed[0]}/{fixed[1]} (q=0)"
            )
        else:
            one = "-"
        p_arms = [f"sgd p={p:g} q=0.5" for p in (0, 0.5, 1)]
        q_arms = [f"sgd p=0.5 q={q:g}" for q in (0, 0.5)]
        dp, dq = _range(r, p_arms), _range(r, q_arms)
        if np.isnan(dp) or np.isnan(dq):
            two = "-"
        else:
            low, high = range_difference_interval(r, p_arms, q_arms)
            verdict = "holds" if low > 0 else "does not hold" if high < 0 else "tie"
            two = (
                f"{verdict}: range over p {dp:.2f} dB, over q {dq:.2f} dB, "
                f"difference [{low:+.2f}, {high:+.2f}]"
            )
        adam, sgd = r.get("adam p=0.5 q=0.5"), r.get("sgd p=0.5 q=0.5")
        if adam and sgd:
            low, high = bootstrap_interval(adam["psnr"], sgd["psnr"])
            diff = np.median(adam["psnr"]) - np.median(sgd["psnr"])
            verdict = "holds" if low > 0 else "does not hold" if high < 0 else "tie"
            three = f"{verdict}: {diff:+.2f} dB [{low:+.2f}, {high:+.2f}]"
        else:
            three = "-"
        lines.append(f"| {prob} | {one} | {two} | {three} |")
    return "\n".join(lines) + "\n"


def figure(final, path):
    """Test PSNR against cost of every tuned arm, one panel per problem."""
    problems = sorted(final["problem"].unique())
    ncols = min(2, len(problems))
    nrows = -(-len(problems) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 3.6 * nrows))
    axes = np.atleast_1d(axes).ravel()
    for ax in axes[len(problems) :]:
        ax.set_visible(False)
    for ax, prob in zip(axes, problems, strict=False):
        thousands_axis(ax.xaxis)
        sub = final[final["problem"] == prob]
        budget = run_budget(sub)
        for name, runs in sub.groupby("arm"):
            band = band_curve(runs, "objective_cost", SCORE, budget)
            if band is not None:
                x, med, low, high = band
                (line,) = ax.plot(x, med, label=name, lw=1.4)
                if low is not None:
                    ax.fill_between(x, low, high, color=line.get_color(), alpha=0.12)
        ax.set_title(prob)
        ax.set_xlabel("cost (per image)", fontsize=8)
        ax.set_ylabel("test PSNR [dB]")
        ax.grid(alpha=0.3)
    axes[len(problems) - 1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sweep", nargs="+")
    parser.add_argument("--final", nargs="+", required=True)
    parser.add_argument("-o", "--output", default=str(ROOT / "docs" / "schedules.png"))
    parser.add_argument("--write", action="store_true", help=f"rewrite {PAGE.name}")
    args = parser.parse_args(argv)
    read = [pd.read_parquet(p) for p in args.sweep]
    sweep = _tag(pd.concat(read, ignore_index=True))
    final = _tag(pd.concat([pd.read_parquet(p) for p in args.final], ignore_index=True))
    text = claims(stability(sweep), finals(final))
    print(text)
    print("figure:", figure(final, args.output))
    if args.write:
        write_block(PAGE, BLOCK, text)
    return text


if __name__ == "__main__":
    main()
