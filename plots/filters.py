"""Learned regulariser filters of each solver, at the end of the run.

The filters come from the artefacts that the objective saves at the end of each
run (``Objective.save_final_results`` returns a dict, which benchopt 1.10
stores in the ``final_results`` column of the last row of the run). As a
fallback, ``evaluate_result`` keys ``final_<key>`` (columns
``objective_final_<key>``) are read from the last row holding them.

Keys read (numpy arrays, never torch tensors): ``filters`` shaped
(K, C, s, s) with C in {1, 3} (or (K, s, s)), and optionally
``filter_weights`` shaped (K,) (the weights exp(a_k); or ``log_weights``, the
a_k), used to sort the
filters by decreasing weight and in the labels. Each filter is shown with its
own symmetric scale: mid-grey is 0, white the largest |coefficient| (colour
filters: per channel around mid-grey). Only the first repetition that has
artefacts is shown; the plot is empty when no run saved filters.
"""

import numpy as np
from benchopt import BasePlot

MAX_COLS = 8


def _artifacts(df):
    """Artefact dict of the first repetition of one run that has one."""
    sort = [c for c in ("idx_rep", "stop_val") if c in df.columns]
    if "final_results" in df.columns:
        sub = df[df["final_results"].map(lambda v: isinstance(v, dict))]
        if len(sub) > 0:
            if sort:
                sub = sub.sort_values(sort, kind="stable")
            return sub["final_results"].iloc[0]
    cols = [c for c in df.columns if c.startswith("objective_final_")]
    if not cols:
        return None
    has = df[cols].apply(
        lambda row: any(isinstance(v, np.ndarray) for v in row), axis=1
    )
    sub = df[has]
    if len(sub) == 0:
        return None
    if "idx_rep" in sub.columns:
        sub = sub[sub["idx_rep"] == sub["idx_rep"].min()]
    if "stop_val" in sub.columns:
        sub = sub.sort_values("stop_val", kind="stable")
    row = sub.iloc[-1]
    return {c[len("objective_final_") :]: row[c] for c in cols}


def _filters(art):
    """Filters as a (K, C, s, s) float array, or None."""
    if not art or art.get("filters") is None:
        return None
    try:
        filters = np.asarray(art["filters"], dtype=float)
    except (TypeError, ValueError):
        return None
    if filters.ndim == 3:
        filters = filters[:, None]
    if filters.ndim != 4 or filters.shape[0] == 0:
        return None
    return np.nan_to_num(filters)


def _weights(art, n_filters):
    """Filter weights exp(a_k) from ``filter_weights`` or ``log_weights``."""
    for key, transform in (("filter_weights", None), ("log_weights", np.exp)):
        if art.get(key) is None:
            continue
        try:
            weights = np.asarray(art[key], dtype=float).ravel()
        except (TypeError, ValueError):
            continue
        if weights.shape == (n_filters,):
            return transform(weights) if transform else weights
    return None


def filter_image(f):
    """(s, s) or (s, s, 3) image in [0, 1] of one (C, s, s) filter."""
    scale = np.max(np.abs(f))
    f = 0.5 + f / (2 * scale) if scale > 0 else np.full_like(f, 0.5)
    if f.shape[0] == 3:
        return np.moveaxis(f, 0, -1)
    if f.shape[0] == 1:
        return f[0]
    return f.mean(axis=0)


def spaced(name):
    """Long parametrized names with a space after each comma, to wrap."""
    return name.replace(",", ", ")


def _filter(df, dataset, objective):
    return df[(df["dataset_name"] == dataset) & (df["objective_name"] == objective)]


def solver_options(df):
    """Solvers whose runs saved filters (all solvers if none did)."""
    names = []
    for solver, df_solver in df.groupby("solver_name", sort=True):
        if any(
            _filters(_artifacts(df_run)) is not None
            for _, df_run in df_solver.groupby(["dataset_name", "objective_name"])
        ):
            names.append(solver)
    return names or sorted(df["solver_name"].unique().tolist())


class Plot(BasePlot):
    name = "learned_filters"
    type = "image"
    options = {
        "dataset": ...,
        "objective": ...,
        "solver": solver_options,
    }

    def plot(self, df, dataset, objective, solver):
        df = _filter(df, dataset, objective)
        art = _artifacts(df[df["solver_name"] == solver])
        filters = _filters(art)
        if filters is None:
            return []
        weights = _weights(art, filters.shape[0])
        order = (
            np.argsort(-weights, kind="stable")
            if weights is not None
            else np.arange(filters.shape[0])
        )
        items = []
        for k in order:
            label = f"#{k}"
            if weights is not None:
                label += f" w={weights[k]:.3g}"
            items.append({"image": filter_image(filters[k]), "label": label})
        return items

    def get_metadata(self, df, dataset, objective, solver):
        art = _artifacts(
            _filter(df, dataset, objective).query("solver_name == @solver")
        )
        filters = _filters(art)
        n_filters = 1 if filters is None else filters.shape[0]
        return {
            # No "\n" in image titles (benchopt shows a literal "<br />"):
            # spaces after the commas let long names wrap.
            "title": spaced(f"Filters learned by {solver} | Data: {dataset}"),
            "ncols": max(1, min(MAX_COLS, n_filters)),
        }
