"""Helpers shared by the report's plots (``plots/*.py``) and
``scripts/make_figure.py``.

Curves: :func:`one_curve` reads one repetition's (x, y) points and
:func:`aggregate` takes the median and a quantile band over repetitions.

Artefacts: the image plots read the artefacts that ``Objective.save_final_results``
returns at the end of each run: benchopt 1.10 stores that dict in the
``final_results`` column of the run's last row, as numpy arrays (``theta``,
``clean``, ``measured``, ``reconstructed``, and ``filters`` /
``log_weights`` for convolutional regularisers).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: quantiles of the band drawn around the median over repetitions
QUANTILES = (0.2, 0.8)
#: most points drawn per curve
MAX_POINTS = 300


def select(df, dataset, objective):
    """Rows of one (dataset, objective) pair of a benchopt result frame."""
    return df[(df["dataset_name"] == dataset) & (df["objective_name"] == objective)]


def final_artifacts(df):
    """``final_results`` dict of the first repetition in ``df`` that has one.

    Parameters
    ----------
    df : pandas.DataFrame
        Rows of one or several runs (benchopt result frame).

    Returns
    -------
    dict or None
        None when no row of ``df`` carries artefacts.
    """
    if "final_results" not in df.columns:
        return None
    sub = df[df["final_results"].map(lambda v: isinstance(v, dict))]
    if len(sub) == 0:
        return None
    sub = sub.sort_values(["idx_rep", "stop_val"], kind="stable")
    return sub["final_results"].iloc[0]


def _as_float(values):
    return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(float)


def one_curve(df_rep, x_col, y_col):
    """Finite (x, y) points of one repetition, sorted by x, unique x."""
    df_rep = df_rep.sort_values("stop_val", kind="stable")
    x = _as_float(df_rep[x_col])
    y = _as_float(df_rep[y_col])
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size == 0:
        return None
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    # Keep the last value reached at a given x (e.g. several evaluations at
    # the same cost).
    last = np.r_[x[1:] != x[:-1], True]
    return x[last], y[last]


def _thin(n, max_points=MAX_POINTS):
    """Indices of at most max_points points out of n, ends included."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, max_points)).astype(int))


def aggregate(curves, quantiles=QUANTILES):
    """Median and quantile band of curves given as a list of (x, y).

    Returns x, median, low, high (low and high are None for a single curve).
    """
    if len(curves) == 1:
        x, y = curves[0]
        idx = _thin(x.size)
        return x[idx], y[idx], None, None
    grid = np.unique(np.concatenate([x for x, _ in curves]))
    values = np.full((len(curves), grid.size), np.nan)
    for i, (x, y) in enumerate(curves):
        inside = (grid >= x[0]) & (grid <= x[-1])
        values[i, inside] = np.interp(grid[inside], x, y)
    count = np.isfinite(values).sum(axis=0)
    keep = count >= int(np.ceil(len(curves) / 2))
    grid, values = grid[keep], values[:, keep]
    if grid.size == 0:
        return grid, grid, None, None
    idx = _thin(grid.size)
    grid, values = grid[idx], values[:, idx]
    median = np.nanmedian(values, axis=0)
    low, high = np.nanquantile(values, quantiles, axis=0)
    return grid, median, low, high


def spaced(name):
    """``name`` with a space after each comma, so that long titles wrap.

    Image plot titles cannot hold a line break (benchopt 1.10 shows a literal
    ``<br />``), but they wrap at spaces.
    """
    return name.replace(",", ", ")


#: statuses marked in the legends (``objective_status``, docs/limits.md), in
#: the order they are listed; ``diverged`` is also read from
#: ``objective_diverged`` for result files written before the status column
MARKED_STATUS = ("diverged", "timeout", "stalled")


def _last_status(df_rep):
    last = df_rep.sort_values("stop_val", kind="stable").iloc[-1]
    status = last.get("objective_status")
    if isinstance(status, str) and status:
        return status
    flag = pd.to_numeric(pd.Series([last.get("objective_diverged")]), errors="coerce")
    return "diverged" if flag.iloc[0] == 1 else "ok"


def status_tag(df_solver):
    """Legend suffix for the repetitions of one solver that did not end well.

    The status of a repetition is ``objective_status`` on its last row
    (largest ``stop_val``). Returns ``""`` when no repetition ended with a
    status of :data:`MARKED_STATUS`, else e.g. ``" (diverged)"`` (every
    repetition), ``" (timeout 1/3 reps)"`` or ``" (diverged 1/3, stalled
    2/3 reps)"``.
    """
    statuses = [_last_status(d) for _, d in df_solver.groupby("idx_rep", sort=True)]
    n_rep = len(statuses)
    parts = []
    for code in MARKED_STATUS:
        k = statuses.count(code)
        if k == n_rep and n_rep:
            parts.append(code)
        elif k:
            parts.append(f"{code} {k}/{n_rep}")
    if not parts:
        return ""
    reps = " reps" if any("/" in part for part in parts) else ""
    return f" ({', '.join(parts)}{reps})"
