"""Helpers shared by the report's plots (``plots/*.py``).

The image plots read the artefacts that ``Objective.save_final_results``
returns at the end of each run: benchopt 1.10 stores that dict in the
``final_results`` column of the run's last row, as numpy arrays (``theta``,
``clean``, ``measured``, ``reconstructed``, and ``filters`` /
``log_weights`` for convolutional regularisers).
"""

from __future__ import annotations


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


def spaced(name):
    """``name`` with a space after each comma, so that long titles wrap.

    Image plot titles cannot hold a line break (benchopt 1.10 shows a literal
    ``<br />``), but they wrap at spaces.
    """
    return name.replace(",", ", ")
