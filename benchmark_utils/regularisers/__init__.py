"""Learnable convex regularisers behind one interface (``ALGORITHMS.md`` s. 2).

Use :func:`make_regulariser` to build one by name; every class derives from
:class:`~benchmark_utils.regularisers.base.Regulariser`.
"""

from .base import HessianOperator, Regulariser
from .foe import FieldsOfExperts

REGULARISERS = {"foe": FieldsOfExperts}


def make_regulariser(name, n_channels, **kwargs):
    """Build the regulariser called ``name`` for images with ``n_channels``.

    Parameters
    ----------
    name : str
        One of ``REGULARISERS`` (``"foe"``; more are added as siblings).
    n_channels : int
        Image channels (1 or 3).
    **kwargs
        Passed to the regulariser's constructor (e.g. ``n_filters``).
    """
    if name not in REGULARISERS:
        raise ValueError(
            f"regulariser must be one of {sorted(REGULARISERS)}, got {name!r}"
        )
    return REGULARISERS[name](n_channels=n_channels, **kwargs)


__all__ = [
    "REGULARISERS",
    "FieldsOfExperts",
    "HessianOperator",
    "Regulariser",
    "make_regulariser",
]
