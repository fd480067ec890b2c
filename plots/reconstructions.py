"""Test images: clean, measured and reconstructed by each solver.

Reads ``clean``, ``measured`` and ``reconstructed`` (float arrays in [0, 1]
shaped (N, C, H, W), C in {1, 3}) from the run's artefacts
(:func:`benchmark_utils.plot_utils.final_artifacts`); the labels give the
PSNR (``docs/maths.md`` (1.5)) of each image against the clean one, and the
solver's short label (:func:`benchmark_utils.plot_utils.short_labels`). Only the
first repetition is shown; the plot is empty when no run saved images.
"""

import numpy as np
from benchopt import BasePlot

from benchmark_utils.plot_utils import (
    final_artifacts,
    select,
    short_labels,
    spaced,
    status_tag,
)

KEYS = ("clean", "measured", "reconstructed")
MAX_COLS = 4
MAX_IMAGES = 16


def _image(art, key, index):
    """Image ``index`` of the stack ``art[key]`` as (H, W) or (H, W, 3), or None."""
    stack = art.get(key)
    if stack is None or index >= len(stack):
        return None
    img = np.asarray(stack[index], dtype=float)
    img = img[0] if img.shape[0] == 1 else np.moveaxis(img, 0, -1)
    return np.nan_to_num(img, nan=0.0, posinf=1.0, neginf=0.0)


def psnr(x, ref):
    """PSNR in dB of x clipped to [0, 1] (as displayed) against ref."""
    if x is None or ref is None:
        return None
    mse = float(np.mean((np.clip(x, 0, 1) - ref) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1 / mse)


def _label(name, p):
    return name if p is None else f"{name}\nPSNR {p:.2f} dB"


def image_indices(df):
    """Indices of the test images available in the artefacts."""
    n = 1
    for _, df_run in df.groupby(["dataset_name", "objective_name", "solver_name"]):
        art = final_artifacts(df_run)
        if art:
            n = max([n] + [len(art[k]) for k in KEYS if art.get(k) is not None])
    return list(range(min(n, MAX_IMAGES)))


class Plot(BasePlot):
    name = "reconstructions"
    type = "image"
    options = {
        "dataset": ...,
        "objective": ...,
        "image_index": image_indices,
    }

    def plot(self, df, dataset, objective, image_index):
        index = int(image_index)
        clean = measured = None
        recons = []
        df = select(df, dataset, objective)
        labels = short_labels(df["solver_name"].unique())
        for solver, df_solver in df.groupby("solver_name", sort=True):
            art = final_artifacts(df_solver)
            if not art:
                continue
            if clean is None:
                clean = _image(art, "clean", index)
            if measured is None:
                measured = _image(art, "measured", index)
            recon = _image(art, "reconstructed", index)
            if recon is not None:
                recons.append((labels[solver] + status_tag(df_solver), recon))
        if clean is None and measured is None and not recons:
            return []
        items = []
        if clean is not None:
            items.append({"image": clean, "label": f"clean (test #{index})"})
        if measured is not None:
            label = _label("measured", psnr(measured, clean))
            items.append({"image": measured, "label": label})
        for solver, recon in recons:
            label = _label(spaced(solver), psnr(recon, clean))
            items.append({"image": recon, "label": label})
        return items

    def get_metadata(self, df, dataset, objective, image_index):
        df = select(df, dataset, objective)
        n_items = 2 + int(df["solver_name"].nunique()) if len(df) else 1
        return {
            "title": spaced(
                f"Test image #{image_index} | {objective} | Data: {dataset}"
            ),
            "ncols": max(1, min(MAX_COLS, n_items)),
        }
