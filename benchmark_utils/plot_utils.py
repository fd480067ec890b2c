"""Helpers shared by the report's plots (``plots/*.py``) and
``scripts/make_figure.py``.

Curves: :func:`one_curve` reads one repetition's (x, y) points, cut at the
cost budget (:func:`clip_at_budget`), and :func:`aggregate` takes the median
and a quantile band over repetitions; docs/report.md says how this makes the
comparison at the budget one at equal cost.

Labels: :func:`short_labels` names each solver run by its solver name and
only the parameters that differ among the runs of that solver.

Reference lines: :func:`reference_values` reads the constant per-run
columns ``objective_<y>_measurement`` and ``objective_<y>_init`` (e.g. the
test PSNR of the measurements and of the initial theta) drawn as dashed
horizontal lines by :func:`dashed_line`.

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


def clip_at_budget(cost, x, y, budget):
    """Cut one curve at ``cost == budget``, interpolating its last point.

    The points are in run order (non-decreasing ``cost``). Points with
    ``cost <= budget`` are kept; the first point past the budget is replaced
    by the point where the segment from its predecessor crosses the budget,
    ``w = (budget - c0) / (c1 - c0)``, ``x = x0 + w (x1 - x0)``,
    ``y = y0 + w (y1 - y0)`` (unless the predecessor is exactly at the
    budget); later points are dropped. A curve that ends
    before the budget (a run cut short) is returned unchanged.

    Parameters
    ----------
    cost, x, y : numpy.ndarray
        Cost, x and y of the points of one repetition, in run order.
    budget : float
        Cost at which to cut.

    Returns
    -------
    x, y : numpy.ndarray
        The points up to the budget (empty when the first point is already
        past it).
    """
    over = np.flatnonzero(cost > budget)
    if over.size == 0:
        return x, y
    k = over[0]
    if k == 0 or cost[k - 1] == budget:
        return x[:k], y[:k]
    c0, c1 = cost[k - 1], cost[k]
    w = (budget - c0) / (c1 - c0)
    x_b = x[k - 1] + w * (x[k] - x[k - 1])
    y_b = y[k - 1] + w * (y[k] - y[k - 1])
    return np.r_[x[:k], x_b], np.r_[y[:k], y_b]


def run_budget(df):
    """Cost budget of the runs in ``df`` (``p_obj_budget``), or None."""
    for col in ("p_obj_budget", "p_objective_budget"):
        if col in df.columns:
            values = _as_float(df[col])
            values = values[np.isfinite(values)]
            if values.size:
                return float(values.max())
    return None


def one_curve(df_rep, x_col, y_col, budget=None, cost_col="objective_cost"):
    """Finite (x, y) points of one repetition, sorted by x, unique x.

    With ``budget``, the curve is first cut at ``cost == budget``
    (:func:`clip_at_budget`, in run order), whatever the x axis is.
    """
    df_rep = df_rep.sort_values("stop_val", kind="stable")
    x = _as_float(df_rep[x_col])
    y = _as_float(df_rep[y_col])
    keep = np.isfinite(x) & np.isfinite(y)
    if budget is not None and cost_col in df_rep.columns:
        cost = _as_float(df_rep[cost_col])
        keep &= np.isfinite(cost)
        x, y = clip_at_budget(cost[keep], x[keep], y[keep], budget)
    else:
        x, y = x[keep], y[keep]
    if x.size == 0:
        return None
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    # Keep the last value reached at a given x (e.g. several evaluations at
    # the same cost).
    last = np.r_[x[1:] != x[:-1], True]
    return x[last], y[last]


def first_reach(x, y, level):
    """Smallest x at which the piecewise-linear curve (x, y) reaches ``level``.

    Returns ``x[0]`` when the curve starts at or above ``level``, the linear
    interpolation inside the first segment that crosses it otherwise, and
    NaN when it never does.
    """
    above = np.flatnonzero(np.asarray(y) >= level)
    if above.size == 0:
        return float("nan")
    j = above[0]
    if j == 0:
        return float(x[0])
    w = (level - y[j - 1]) / (y[j] - y[j - 1])
    return float(x[j - 1] + w * (x[j] - x[j - 1]))


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


def split_name(name):
    """Split a benchopt parametrized name ``"Base[k1=v1,k2=v2]"``.

    Commas inside brackets (list values) do not split.

    Returns
    -------
    base : str
        The part before ``[`` (the whole name when it has no parameters).
    params : dict
        Parameter name -> value as written in the name, in order.
    """
    base, bracket, rest = name.partition("[")
    if not bracket or not rest.endswith("]"):
        return name, {}
    items, depth, start = [], 0, 0
    body = rest[:-1]
    for i, char in enumerate(body):
        if char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
        if char == "," and depth == 0:
            items.append(body[start:i])
            start = i + 1
    items.append(body[start:])
    params = {}
    for item in items:
        key, _, value = item.partition("=")
        if key:
            params[key.strip()] = value.strip()
    return base, params


def _short_value(value):
    """``value`` as written, numbers in ``%g`` form (``0.0`` -> ``0``)."""
    try:
        return f"{float(value):g}"
    except ValueError:
        return value


def short_labels(names):
    """Short legend label of each parametrized run name.

    A label is the base name followed by the parameters whose value differs
    among the runs of ``names`` with that base name, e.g. ``"ISGD q=0"`` and
    ``"ISGD q=0.5"`` for two ISGD runs that differ only by ``q``; a base name
    with a single run keeps no parameter. Names that would get the same
    label keep their full name.

    Parameters
    ----------
    names : iterable of str
        benchopt parametrized names (``solver_name`` values).

    Returns
    -------
    dict
        Full name -> label.
    """
    names = list(dict.fromkeys(names))
    parsed = {name: split_name(name) for name in names}
    groups = {}
    for name, (base, _) in parsed.items():
        groups.setdefault(base, []).append(name)
    labels = {}
    for base, group in groups.items():
        keys = list(dict.fromkeys(k for n in group for k in parsed[n][1]))
        differ = [k for k in keys if len({parsed[n][1].get(k) for n in group}) > 1]
        for name in group:
            params = parsed[name][1]
            parts = [f"{k}={_short_value(params[k])}" for k in differ if k in params]
            labels[name] = " ".join([base, ", ".join(parts)]) if parts else base
    counts = pd.Series(list(labels.values())).value_counts()
    return {n: (n if counts[lab] > 1 else lab) for n, lab in labels.items()}


#: suffix of a constant per-run column -> label of its reference line
REFERENCE_SUFFIXES = {"measurement": "measurement", "init": "initial theta"}


def is_reference_key(key):
    """Whether objective key ``key`` is a reference column (never a y option)."""
    return any(key.endswith("_" + suffix) for suffix in REFERENCE_SUFFIXES)


def reference_values(df, y_key):
    """Reference levels of the metric ``y_key`` in the runs of ``df``.

    Reads ``objective_<y_key>_measurement`` (the metric of the measurements
    themselves, e.g. the test PSNR of the noisy or blurred images) and
    ``objective_<y_key>_init`` (the metric at the initial theta shared by all
    solvers). Both are constant over a run; the median over the rows of
    ``df`` is returned.

    Returns
    -------
    list of (str, float)
        (label, value) for each column present with a finite value.
    """
    refs = []
    for suffix, label in REFERENCE_SUFFIXES.items():
        col = f"objective_{y_key}_{suffix}"
        if col not in df.columns:
            continue
        values = _as_float(df[col])
        values = values[np.isfinite(values)]
        if values.size:
            refs.append((label, float(np.median(values))))
    return refs


def dashed_line(value, x0, x1, n_dashes=25, fill=0.6):
    """Points of a horizontal dashed line at ``value`` from x0 to x1.

    The dashes are segments separated by a NaN x, which plotly and matplotlib
    both draw as a gap; ``fill`` is the fraction of each period drawn.

    Returns
    -------
    x, y : list of float
        ``3 * n_dashes`` points (start, end, gap per dash).
    """
    period = (x1 - x0) / n_dashes
    x, y = [], []
    for i in range(n_dashes):
        start = x0 + i * period
        x += [start, start + fill * period, float("nan")]
        y += [value, value, value]
    return x, y


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
