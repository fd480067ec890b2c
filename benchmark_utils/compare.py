"""Comparisons at equal cost: scores at the budget, ties, rank agreement.

Shared by ``scripts/make_figure.py`` (docs/results.md) and the study tools
(``tools/``): a repetition's score is its curve at the cost budget
(:func:`benchmark_utils.plot_utils.one_curve`, cut and interpolated there);
two solvers are tied when the bootstrap interval of the difference of their
medians over repetitions holds 0 (``docs/results.md``, "Ties").
"""

from __future__ import annotations

import numpy as np

from .plot_utils import one_curve

#: statuses of a repetition that ended well (``docs/limits.md``)
OK_STATUS = ("ok", "budget")


def at_budget(runs, col, budget, x_col="objective_cost"):
    """Each repetition's ``col`` at the budget, and whether all ended well.

    ``runs`` holds the rows of one configuration; a repetition ends well when
    its last row's status is in :data:`OK_STATUS` and its curve reaches 95 %
    of the budget. Returns (values (n_rep,), ok).
    """
    values, ok = [], True
    for _, rep in runs.groupby("idx_rep"):
        curve = one_curve(rep, x_col, col, budget=budget)
        last = rep.sort_values("stop_val").iloc[-1]
        ok &= str(last.get("objective_status", "ok")) in OK_STATUS
        ok &= curve is not None and curve[0][-1] >= 0.95 * (budget or 0)
        values.append(np.nan if curve is None else float(curve[1][-1]))
    return np.array(values), bool(ok)


def bootstrap_interval(a, b, level=0.9, n_boot=4000, seed=0):
    """Bootstrap interval of median(a) - median(b), each resampled apart."""
    rng = np.random.default_rng(seed)
    a, b = np.asarray(a, float), np.asarray(b, float)
    da = np.median(rng.choice(a, (n_boot, a.size)), axis=1)
    db = np.median(rng.choice(b, (n_boot, b.size)), axis=1)
    tail = (1 - level) / 2
    return tuple(np.quantile(da - db, [tail, 1 - tail]))


def is_tie(a, b):
    """Whether the bootstrap 90 % interval of median(a) - median(b) holds 0."""
    low, high = bootstrap_interval(a, b)
    return bool(low <= 0 <= high)


def kendall_tau(first, second):
    """Kendall's tau between two orderings of the same names."""
    pos = {name: i for i, name in enumerate(second)}
    pairs = [(p, q) for i, p in enumerate(first) for q in first[i + 1 :]]
    if not pairs:
        return float("nan")
    return sum(1 if pos[p] < pos[q] else -1 for p, q in pairs) / len(pairs)


def ranking(values):
    """Names by decreasing median of ``values`` ({name: array}), and for each
    neighbour pair whether it is a tie (:func:`is_tie`)."""
    names = sorted(values, key=lambda k: -np.median(values[k]))
    ties = [
        is_tie(values[p], values[q]) for p, q in zip(names, names[1:], strict=False)
    ]
    return names, ties
