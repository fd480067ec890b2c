"""Test images: clean, measured and reconstructed by each solver.

Reads ``clean``, ``measured`` and ``reconstructed`` ((N, C, H, W) in [0, 1])
and the per-image ``psnr``, ``ssim``, ``psnr_measured``, ``ssim_measured``
from the first repetition's artefacts, computing the scores when absent
(:func:`benchmark_utils.plot_utils.image_scores`). Every image is shown
whole, repeated to at least :data:`DISPLAY_PX` pixels (``docs/report.md``,
"Reconstructions and filters").
"""

import numpy as np
from benchopt import BasePlot

from benchmark_utils.plot_utils import (
    as_display,
    dataset_options,
    final_artifacts,
    image_scores,
    select,
    short_labels,
    status_tag,
    title_names,
    upscale,
)

KEYS = ("clean", "measured", "reconstructed")
#: columns of the grid (benchopt's page is at most 1000 px wide)
N_COLS = 3
#: smallest displayed side of an image, in pixels
DISPLAY_PX = 256
#: most test images offered in the dropdown
MAX_IMAGES = 64


def _label(name, scores):
    psnr, ssim = scores
    parts = [] if psnr is None else [f"PSNR {psnr:.2f} dB"]
    if ssim is not None and np.isfinite(ssim):
        parts.append(f"SSIM {ssim:.3f}")
    return "\n".join([name, ", ".join(parts)]) if parts else name


def n_test_images(df):
    """Number of test images in the artefacts of the runs of ``df``."""
    n = 0
    for _, df_run in df.groupby(["dataset_name", "objective_name", "solver_name"]):
        art = final_artifacts(df_run) or {}
        n = max([n] + [len(art[k]) for k in KEYS if art.get(k) is not None])
    return n


def image_indices(df):
    """Indices of the test images available in the artefacts."""
    return list(range(max(1, min(n_test_images(df), MAX_IMAGES))))


class Plot(BasePlot):
    name = "reconstructions"
    type = "image"
    options = {
        "dataset": dataset_options,
        "objective": ...,
        "image_index": image_indices,
    }

    def plot(self, df, dataset, objective, image_index):
        index = int(image_index)
        df = select(df, dataset, objective)
        labels = short_labels(df["solver_name"].unique())
        items, clean = {}, None
        for solver, df_solver in df.groupby("solver_name", sort=True):
            art = final_artifacts(df_solver) or {}
            image = {
                key: as_display(art[key][index])
                for key in KEYS
                if art.get(key) is not None and index < len(art[key])
            }
            if clean is None and "clean" in image:
                clean = image["clean"]
                items["clean"] = (clean, f"clean (test #{index})")
            if "measured" in image and "measured" not in items:
                scores = image_scores(art, "measured", index)
                items["measured"] = (image["measured"], _label("measured", scores))
            if "reconstructed" in image:
                name = labels[solver] + status_tag(df_solver)
                scores = image_scores(art, "reconstructed", index)
                items[solver] = (image["reconstructed"], _label(name, scores))
        return [
            {"image": upscale(image, DISPLAY_PX), "label": label}
            for image, label in items.values()
        ]

    def get_metadata(self, df, dataset, objective, image_index):
        names = title_names(df)
        n = n_test_images(select(df, dataset, objective))
        return {
            "title": f"Test image #{image_index} of {n} | {names[dataset]} | "
            f"{names[objective]} | end of the run, first repetition",
            "ncols": N_COLS,
        }
