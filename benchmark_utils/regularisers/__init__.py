"""Learnable convex regularisers behind one interface (``docs/maths.md`` section 2).

Use :func:`make_regulariser` to build one by name; every class derives from
:class:`~benchmark_utils.regularisers.base.Regulariser`.
"""

from .base import HessianOperator, Regulariser
from .crr import ConvexRidge
from .foe import FieldsOfExperts
from .icnn import ICNN
from .tv import SmoothedTV

REGULARISERS = {
    "foe": FieldsOfExperts,
    "tv": SmoothedTV,
    "crr": ConvexRidge,
    "icnn": ICNN,
}


def make_regulariser(name, n_channels, **kwargs):
    """Build the regulariser called ``name`` for images with ``n_channels``.

    Parameters
    ----------
    name : str
        One of ``REGULARISERS``: ``"foe"`` (Fields of Experts), ``"tv"``
        (smoothed total variation), ``"crr"`` (convex ridge regulariser),
        ``"icnn"`` (input-convex neural network).
    n_channels : int
        Image channels (1 or 3).
    **kwargs
        Passed to the regulariser's constructor (``n_filters``, ``kernel_size``
        and model-specific options; see each class for their meaning).
    """
    if name not in REGULARISERS:
        raise ValueError(
            f"regulariser must be one of {sorted(REGULARISERS)}, got {name!r}"
        )
    return REGULARISERS[name](n_channels=n_channels, **kwargs)


__all__ = [
    "ICNN",
    "REGULARISERS",
    "ConvexRidge",
    "FieldsOfExperts",
    "HessianOperator",
    "Regulariser",
    "SmoothedTV",
    "make_regulariser",
]
