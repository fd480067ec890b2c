"""Test images: clean, measured and reconstructed by each solver.

The images come from the artefacts that the objective saves at the end of each
run (``Objective.save_final_results`` returns a dict, which benchopt 1.10
stores in the ``final_results`` column of the last row of the run). As a
fallback, ``evaluate_result`` keys ``final_<key>`` (columns
``objective_final_<key>``) are read from the last row holding them.

Keys read (numpy arrays, float in [0, 1] or uint8; never torch tensors, which
benchopt cannot read back): ``clean``, ``measured`` and ``recon`` (or
``reconstructed``), each a stack of test images shaped (N, C, H, W),
(N, H, W, C) or (N, H, W), with C in {1, 3}. Only the first repetition that
has artefacts is shown. The plot is empty when no run saved them.
"""

import numpy as np
from benchopt import BasePlot

# Artefact key -> accepted names, first found wins.
ALIASES = {
    "clean": ("clean",),
    "measured": ("measured",),
    "recon": ("recon", "reconstructed", "reconstruction"),
}
MAX_COLS = 4


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
    has = df[cols].apply(lambda row: any(_is_array(v) for v in row), axis=1)
    sub = df[has]
    if len(sub) == 0:
        return None
    if "idx_rep" in sub.columns:
        sub = sub[sub["idx_rep"] == sub["idx_rep"].min()]
    if "stop_val" in sub.columns:
        sub = sub.sort_values("stop_val", kind="stable")
    row = sub.iloc[-1]
    return {c[len("objective_final_") :]: row[c] for c in cols}


def _is_array(value):
    return isinstance(value, (np.ndarray, list, tuple))


def _to_image(img):
    """(H, W) or (H, W, 3) float array from CHW / HWC / HW, or None.

    Float images are expected in [0, 1] (benchopt clips them); uint8 images in
    [0, 255] are rescaled.
    """
    try:
        img = np.asarray(img)
        scale = 255.0 if img.dtype == np.uint8 else 1.0
        img = img.astype(float) / scale
    except (TypeError, ValueError):
        return None
    if img.ndim == 3 and img.shape[0] in (1, 3) and img.shape[-1] not in (1, 3):
        img = np.moveaxis(img, 0, -1)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim == 2 or (img.ndim == 3 and img.shape[-1] == 3):
        return np.nan_to_num(img, nan=0.0, posinf=1.0, neginf=0.0)
    return None


def _get(art, key):
    """Stack stored under ``key`` or one of its aliases, or None."""
    for name in ALIASES[key]:
        if art.get(name) is not None:
            return art[name]
    return None


def _n_images(stack):
    if isinstance(stack, (list, tuple)):
        return len(stack)
    if isinstance(stack, np.ndarray) and stack.ndim in (3, 4):
        return stack.shape[0]
    return 0


def _get_image(stack, index):
    """Image ``index`` of a stack (N, C, H, W), (N, H, W, C) or (N, H, W)."""
    if stack is None or index >= _n_images(stack):
        return None
    return _to_image(stack[index])


def psnr(x, ref):
    """PSNR in dB of x clipped to [0, 1] (as displayed) against ref."""
    if x is None or ref is None or x.shape != ref.shape:
        return None
    mse = float(np.mean((np.clip(x, 0, 1) - ref) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1 / mse)


def _fmt(p):
    return "" if p is None else f"\nPSNR {p:.2f} dB"


def spaced(name):
    """Long parametrized names with a space after each comma, to wrap."""
    return name.replace(",", ", ")


def _filter(df, dataset, objective):
    return df[(df["dataset_name"] == dataset) & (df["objective_name"] == objective)]


def image_indices(df):
    """Indices of the test images available in the artefacts."""
    n = 0
    for _, df_run in df.groupby(["dataset_name", "objective_name", "solver_name"]):
        art = _artifacts(df_run)
        if art:
            n = max([n] + [_n_images(_get(art, k)) for k in ALIASES])
    return list(range(min(max(n, 1), 16)))


class Plot(BasePlot):
    name = "reconstructions"
    type = "image"
    options = {
        "dataset": ...,
        "objective": ...,
        "image_index": image_indices,
    }

    def plot(self, df, dataset, objective, image_index):
        df = _filter(df, dataset, objective)
        index = int(image_index)
        clean = measured = None
        recons = []
        for solver, df_solver in df.groupby("solver_name", sort=True):
            art = _artifacts(df_solver)
            if not art:
                continue
            if clean is None:
                clean = _get_image(_get(art, "clean"), index)
            if measured is None:
                measured = _get_image(_get(art, "measured"), index)
            recon = _get_image(_get(art, "recon"), index)
            if recon is not None:
                recons.append((solver, recon))
        if clean is None and measured is None and not recons:
            return []
        items = []
        if clean is not None:
            items.append({"image": clean, "label": f"clean (test #{index})"})
        if measured is not None:
            items.append(
                {
                    "image": measured,
                    "label": "measured" + _fmt(psnr(measured, clean)),
                }
            )
        for solver, recon in recons:
            items.append(
                {
                    "image": recon,
                    "label": spaced(solver) + _fmt(psnr(recon, clean)),
                }
            )
        return items

    def get_metadata(self, df, dataset, objective, image_index):
        df = _filter(df, dataset, objective)
        n_items = 2 + int(df["solver_name"].nunique()) if len(df) else 1
        return {
            # No "\n" in image titles (benchopt shows a literal "<br />"):
            # spaces after the commas let long names wrap.
            "title": spaced(
                f"Test image #{image_index} | {objective} | Data: {dataset}"
            ),
            "ncols": max(1, min(MAX_COLS, n_items)),
        }
