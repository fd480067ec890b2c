"""Learned regulariser filters of each solver, at the end of the run.

Reads ``filters`` (K, C, s, s) and ``log_weights`` (K,) from the first
repetition's artefacts, sorted by decreasing weight exp(a_k)
(``docs/maths.md`` (2.1)); each filter on its own symmetric scale, mid-grey
= 0, repeated to at least :data:`DISPLAY_PX` pixels. Empty for regularisers
without filters.
"""

import numpy as np
from benchopt import BasePlot

from benchmark_utils.plot_utils import (
    dataset_options,
    final_artifacts,
    select,
    short_labels,
    title_names,
    upscale,
)

MAX_COLS = 4
#: smallest displayed side of a filter, in pixels
DISPLAY_PX = 160


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
        "dataset": dataset_options,
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
            image = upscale(filter_image(filters[k]), DISPLAY_PX)
            items.append({"image": image, "label": label})
        return items

    def get_metadata(self, df, dataset, objective, solver):
        names = title_names(df)
        label = short_labels(df["solver_name"].unique())[solver]
        sub = select(df, dataset, objective)
        filters = _filters(final_artifacts(sub[sub["solver_name"] == solver]))
        n_filters = 1 if filters is None else filters.shape[0]
        return {
            "title": f"Filters learned by {label} | {names[dataset]} | "
            f"{names[objective]} | sorted by weight, mid-grey = 0",
            "ncols": max(1, min(MAX_COLS, n_filters)),
        }
