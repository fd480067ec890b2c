"""Learned regulariser filters of each solver, at the end of the run.

Reads ``filters`` (K, C, s, s) and ``log_weights`` (K,) from the run's
artefacts (:func:`benchmark_utils.plot_utils.final_artifacts`); the filters are
sorted by decreasing weight exp(a_k) (``docs/maths.md`` (2.1)). Each filter has
its own symmetric scale: mid-grey is 0, white the largest |coefficient| (colour
filters: per channel). Only the first repetition is shown; the plot is empty
for regularisers without filters.
"""

import numpy as np
from benchopt import BasePlot

from benchmark_utils.plot_utils import final_artifacts, select, spaced

MAX_COLS = 8


def _filters(art):
    """Filters as a (K, C, s, s) float array, or None."""
    if not art or art.get("filters") is None:
        return None
    return np.nan_to_num(np.asarray(art["filters"], dtype=float))


def filter_image(f):
    """(s, s) or (s, s, 3) image in [0, 1] of one (C, s, s) filter."""
    scale = np.max(np.abs(f))
    f = 0.5 + f / (2 * scale) if scale > 0 else np.full_like(f, 0.5)
    if f.shape[0] == 3:
        return np.moveaxis(f, 0, -1)
    if f.shape[0] == 1:
        return f[0]
    return f.mean(axis=0)


def solver_options(df):
    """Solvers whose runs saved filters (all solvers if none did)."""
    names = []
    for solver, df_solver in df.groupby("solver_name", sort=True):
        if any(
            _filters(final_artifacts(df_run)) is not None
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
        df = select(df, dataset, objective)
        art = final_artifacts(df[df["solver_name"] == solver])
        filters = _filters(art)
        if filters is None:
            return []
        weights = art.get("log_weights")
        if weights is None:
            order = np.arange(filters.shape[0])
        else:
            weights = np.exp(np.asarray(weights, dtype=float).ravel())
            order = np.argsort(-weights, kind="stable")
        items = []
        for k in order:
            label = f"#{k}" if weights is None else f"#{k} w={weights[k]:.3g}"
            items.append({"image": filter_image(filters[k]), "label": label})
        return items

    def get_metadata(self, df, dataset, objective, solver):
        df = select(df, dataset, objective)
        filters = _filters(final_artifacts(df[df["solver_name"] == solver]))
        n_filters = 1 if filters is None else filters.shape[0]
        return {
            "title": spaced(f"Filters learned by {solver} | Data: {dataset}"),
            "ncols": max(1, min(MAX_COLS, n_filters)),
        }
