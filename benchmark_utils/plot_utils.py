"""Helpers shared by the report's plots (``plots/*.py``) and
``scripts/make_figure.py``: curves cut at the budget and aggregated over
repetitions, short labels and titles, fixed solver styles, reference lines,
status marks, and the image artefacts with their PSNR / SSIM
(``docs/maths.md`` (1.5)). ``docs/report.md`` says how each is drawn.
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
    """``final_results`` dict of the first repetition in ``df`` that has one
    (what ``Objective.save_final_results`` returned), or None."""
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
    """Cut one curve, given in run order, at ``cost == budget``.

    Points with ``cost <= budget`` are kept, the first point past the budget
    is replaced by the linear interpolation at the budget and later points are
    dropped (``docs/report.md``, "Equal cost"); a curve ending before the
    budget is returned unchanged. Returns (x, y), possibly empty.
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
    """Finite (x, y) points of one repetition, sorted by x, unique x, cut
    at ``cost == budget`` (:func:`clip_at_budget`) when a budget is given."""
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
    """Smallest x at which the piecewise-linear curve (x, y) reaches
    ``level`` (``x[0]`` if it starts there, NaN if it never does)."""
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
    """Median and quantile band of a list of curves (x, y), on the union of
    their x covered by at least half of them. Returns x, median, low, high
    (low and high are None for a single curve)."""
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


def band_curve(runs, x_col, y_col, budget=None):
    """Median and 20-80 % band over the repetitions of ``runs`` of ``y_col``
    against ``x_col``, each cut at the budget (:func:`one_curve`,
    :func:`aggregate`); None when no repetition has a point."""
    reps = runs.groupby("idx_rep")
    curves = [one_curve(rep, x_col, y_col, budget) for _, rep in reps]
    curves = [c for c in curves if c is not None]
    return aggregate(curves) if curves else None


def split_name(name):
    """``"Base[k1=v1,k2=v2]"`` -> ``("Base", {"k1": "v1", "k2": "v2"})``
    (values as written; commas inside brackets do not split)."""
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


def short_labels(names, keep=()):
    """Full name -> short label of parametrized names (``solver_name``).

    A label is the base name and the parameters in ``keep`` or whose value
    differs among the names with that base, e.g. ``"ISGD q=0"`` and ``"ISGD
    q=0.5"``; names that would share a label keep their full name.
    """
    names = list(dict.fromkeys(names))
    parsed = {name: split_name(name) for name in names}
    groups = {}
    for name, (base, _) in parsed.items():
        groups.setdefault(base, []).append(name)
    labels = {}
    for base, group in groups.items():
        keys = list(dict.fromkeys(k for n in group for k in parsed[n][1]))
        differ = [
            k
            for k in keys
            if k in keep or len({parsed[n][1].get(k) for n in group}) > 1
        ]
        for name in group:
            params = parsed[name][1]
            parts = [f"{k}={_short_value(params[k])}" for k in differ if k in params]
            labels[name] = " ".join([base, ", ".join(parts)]) if parts else base
    counts = pd.Series(list(labels.values())).value_counts()
    return {n: (n if counts[lab] > 1 else lab) for n, lab in labels.items()}


# -- titles and the order of the dropdowns -----------------------------------
#: parameters always named in titles (the task's noise and operator)
TITLE_PARAMETERS = ("noise_level", "blur_sigma", "mask_ratio", "regulariser")
#: tasks in the order of the dataset dropdowns: the report opens on the first
#: one present (docs/report.md, "Views")
TASK_ORDER = ("denoising", "deblurring", "inpainting")


def title_names(df):
    """Dataset or objective name of ``df`` -> its name in titles: base plus
    :data:`TITLE_PARAMETERS` and the parameters that differ among the names
    of ``df`` (:func:`short_labels`), e.g. ``"denoising (noise_level=25)"``."""
    names = [*df["dataset_name"].unique(), *df["objective_name"].unique()]
    labels = short_labels(names, keep=TITLE_PARAMETERS)
    out = {}
    for name, label in labels.items():
        base = split_name(name)[0]
        rest = label[len(base) :].strip() if label != name else ""
        out[name] = f"{base} ({rest})" if rest else label
    return out


def dataset_options(df):
    """Dataset names, :data:`TASK_ORDER` first, then in order of appearance."""
    names = list(dict.fromkeys(df["dataset_name"]))
    rank = {task: i for i, task in enumerate(TASK_ORDER)}
    return sorted(names, key=lambda n: rank.get(split_name(n)[0], len(rank)))


# -- fixed solver styles -------------------------------------------------------
#: marker name -> (plotly symbol number, matplotlib marker); plotly adds 100
#: to a symbol for its open version
MARKERS = {
    "circle": (0, "o"),
    "square": (1, "s"),
    "diamond": (2, "D"),
    "cross": (3, "P"),
    "x": (4, "X"),
    "triangle-up": (5, "^"),
    "triangle-down": (6, "v"),
    "triangle-left": (7, "<"),
    "triangle-right": (8, ">"),
    "pentagon": (13, "p"),
    "hexagon": (14, "h"),
    "star": (17, "*"),
}
#: colour (matplotlib's tab10, grey kept for the reference lines) and marker
#: of the benchmark's solvers, fixed whatever else is in a report
SOLVER_STYLES = {
    "AmIGO": ("#1f77b4", "circle"),
    "BSA": ("#ff7f0e", "square"),
    "HOAG": ("#2ca02c", "diamond"),
    "ISGD": ("#d62728", "cross"),
    "MAID": ("#8c564b", "triangle-up"),
    "SOBA": ("#e377c2", "triangle-down"),
    "TTSA": ("#17becf", "triangle-left"),
    "stocBiO": ("#bcbd22", "triangle-right"),
}
#: colours for other solver names, picked by a hash of the name
EXTRA_COLOURS = (
    "#9467bd",
    "#393b79",
    "#637939",
    "#8c6d31",
    "#843c39",
    "#7b4173",
    "#3182bd",
    "#e6550d",
    "#31a354",
    "#756bb1",
)
#: line styles of the variants of one solver: plotly dash, matplotlib style
DASHES = (("solid", "-"), ("dash", "--"), ("dot", ":"), ("dashdot", "-."))


def _stable_index(text, n):
    """Index in [0, n) from the md5 of ``text`` (Python's hash is salted)."""
    import hashlib

    return int(hashlib.md5(text.encode("utf-8")).hexdigest(), 16) % n


def solver_styles(names):
    """Full solver name -> style dict, fixed per solver name.

    The colour and marker depend on the base name only (:data:`SOLVER_STYLES`,
    else a hash of it), so a solver keeps them when others are added or
    removed. The variants of one base in ``names`` (sorted) differ by line
    style, and every other variant has open markers.

    Returns
    -------
    dict
        Name -> ``{"color": hex, "marker": plotly symbol number, "dash":
        plotly dash, "mpl_marker", "mpl_linestyle", "mpl_open": bool}``.
    """
    names = sorted(dict.fromkeys(names))
    variants = {}
    for name in names:
        variants.setdefault(split_name(name)[0], []).append(name)
    styles = {}
    for base, group in variants.items():
        if base in SOLVER_STYLES:
            colour, marker = SOLVER_STYLES[base]
        else:
            colour = EXTRA_COLOURS[_stable_index(base, len(EXTRA_COLOURS))]
            marker = list(MARKERS)[_stable_index("m" + base, len(MARKERS))]
        symbol, mpl_marker = MARKERS[marker]
        for k, name in enumerate(group):
            dash, linestyle = DASHES[k % len(DASHES)]
            styles[name] = {
                "color": colour,
                "marker": symbol + 100 * (k % 2),
                "dash": dash,
                "mpl_marker": mpl_marker,
                "mpl_linestyle": linestyle,
                "mpl_open": bool(k % 2),
            }
    return styles


def thousands_axis(axis):
    """Label a ``matplotlib`` cost axis in thousands ("50k"), not with an
    offset or six digits."""
    from matplotlib.ticker import FuncFormatter  # no matplotlib at import

    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:g}k" if v else "0"))


def mpl_style(style, n_points):
    """``matplotlib`` ``plot`` keywords of a :func:`solver_styles` entry, with
    about 8 markers along a curve of ``n_points`` points."""
    return {
        "color": style["color"],
        "linestyle": style["mpl_linestyle"],
        "marker": style["mpl_marker"],
        "markevery": max(1, n_points // 8),
        "markersize": 5,
        "markerfacecolor": "white" if style["mpl_open"] else style["color"],
    }


# -- reference lines -----------------------------------------------------------
#: suffix of a constant per-run column -> label of its reference line
REFERENCE_SUFFIXES = {"measurement": "measurement", "init": "initial theta"}
#: look of each reference line: colour, plotly dash, matplotlib line style,
#: and the dashes drawn for benchopt's page (which draws every trace solid):
#: number of dashes across the x range and the fraction of each period drawn
REFERENCE_STYLES = {
    "initial theta": {
        "color": "#000000",
        "dash": "dash",
        "mpl_linestyle": "--",
        "n_dashes": 25,
        "fill": 0.6,
    },
    "measurement": {
        "color": "#7f7f7f",
        "dash": "dot",
        "mpl_linestyle": ":",
        "n_dashes": 70,
        "fill": 0.25,
    },
}
#: plotly symbol of the reference lines ("line-ew-open": a short dash)
REFERENCE_MARKER = 141


def is_reference_key(key):
    """Whether objective key ``key`` is a reference column (never a y option)."""
    return any(key.endswith("_" + suffix) for suffix in REFERENCE_SUFFIXES)


def reference_values(df, y_key):
    """[(label, level)] of the reference columns ``objective_<y_key>_measurement``
    and ``objective_<y_key>_init`` present in ``df`` with a finite value
    (median over the rows; both are constant per run)."""
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
    """Points (x, y) of a horizontal dashed line at ``value`` from x0 to x1:
    ``n_dashes`` segments separated by a NaN x, each ``fill`` of its period
    (plotly and matplotlib draw a NaN as a gap)."""
    period = (x1 - x0) / n_dashes
    x, y = [], []
    for i in range(n_dashes):
        start = x0 + i * period
        x += [start, start + fill * period, float("nan")]
        y += [value, value, value]
    return x, y


# -- run status ----------------------------------------------------------------
#: statuses marked in the legends (``objective_status``, docs/limits.md), in
#: this order; ``diverged`` is also read from ``objective_diverged`` (older
#: result files)
MARKED_STATUS = ("diverged", "collapsed", "timeout", "stalled")


def _last_statuses(df_solver):
    """Status of the last row (largest ``stop_val``) of each repetition."""
    last = df_solver.sort_values(["idx_rep", "stop_val"], kind="stable")
    last = last.groupby("idx_rep", sort=True).tail(1)
    none = [None] * len(last)
    status = last.get("objective_status", pd.Series(none)).tolist()
    flag = pd.to_numeric(last.get("objective_diverged", pd.Series(none)))
    return [
        s if isinstance(s, str) and s else ("diverged" if f == 1 else "ok")
        for s, f in zip(status, flag.tolist(), strict=True)
    ]


def status_tag(df_solver):
    """Legend suffix for the repetitions of one solver whose last row has a
    status of :data:`MARKED_STATUS`: ``""`` if none, ``" (diverged)"`` if
    all, ``" (timeout 1/3 reps)"`` or ``" (diverged 1/3, stalled 2/3 reps)"``."""
    statuses = _last_statuses(df_solver)
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


# -- images --------------------------------------------------------------------
def as_display(image):
    """(C, H, W) array -> (H, W) or (H, W, 3) float image, NaN/inf replaced."""
    img = np.asarray(image, dtype=float)
    img = img[0] if img.shape[0] == 1 else np.moveaxis(img, 0, -1)
    return np.nan_to_num(img, nan=0.0, posinf=1.0, neginf=0.0)


def upscale(image, min_size):
    """``image`` repeated k times along H and W (nearest neighbour), with the
    smallest k >= 1 that makes its larger side at least ``min_size`` px."""
    k = max(1, int(np.ceil(min_size / max(image.shape[:2]))))
    return np.repeat(np.repeat(image, k, axis=0), k, axis=1)


#: per-image metric keys of the artefacts: (PSNR, SSIM) of each image stack
METRIC_KEYS = {
    "reconstructed": ("psnr", "ssim"),
    "measured": ("psnr_measured", "ssim_measured"),
}


def image_scores(art, key, index):
    """(PSNR, SSIM) of image ``index`` of ``art[key]`` against the clean one.

    Read from the per-image arrays of the artefacts (:data:`METRIC_KEYS`)
    when the run saved them, computed from the images otherwise (files
    written before they were saved) by :mod:`benchmark_utils.metrics`, the
    evaluation's own scores. Either may be None when neither is available.
    """
    from .metrics import psnr, ssim

    if key not in METRIC_KEYS:
        return None, None
    scores = []
    for metric, fn in zip(METRIC_KEYS[key], (psnr, ssim), strict=True):
        values = art.get(metric)
        if values is not None and index < len(np.ravel(values)):
            scores.append(float(np.ravel(values)[index]))
        elif art.get(key) is not None and art.get("clean") is not None:
            x = np.clip(np.asarray(art[key][index : index + 1], dtype=np.float32), 0, 1)
            clean = np.asarray(art["clean"][index : index + 1], dtype=np.float32)
            try:
                scores.append(float(fn(x, clean)[0]))
            except (RuntimeError, ValueError):  # SSIM of an image under 11 px
                scores.append(None)
        else:
            scores.append(None)
    return tuple(scores)
