"""Learnable convex regularisers behind one interface (``docs/maths.md`` s. 2),
built by name with :func:`make_regulariser` (``docs/regularisers.md``)."""

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
    """``REGULARISERS[name](n_channels=n_channels, **kwargs)``: ``"foe"``,
    ``"tv"``, ``"crr"`` or ``"icnn"`` for images of 1 or 3 channels, with the
    class's options (``docs/regularisers.md``); ``ValueError`` otherwise."""
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
