"""Parameter checks with one-line messages naming the parameter and its range.

Every component validates each of its parameters once, where it enters
(datasets in ``get_data``, the objective in ``set_data``, solvers in
``set_objective``), with the functions below. Values arriving from benchopt's
command line can be strings (``inf``, ``nan``, any word), floats where ints
are expected, or bools; every check rejects those with a ``ValueError``
rather than letting a ``TypeError`` or a silent truncation happen later. The
message reads ``"<owner>: parameter <name>=<value> is invalid; allowed:
<range>"``.
"""

from __future__ import annotations

import math
import numbers

import torch


def fail(owner, name, value, allowed):
    """Raise the one-line ``ValueError`` of an invalid parameter.

    Parameters
    ----------
    owner : str
        Component that owns the parameter (e.g. ``"deblurring"``, ``"ISGD"``);
        ``""`` for none.
    name : str
        Parameter name.
    value : object
        The value given.
    allowed : str
        The allowed values, in words.
    """
    prefix = f"{owner}: " if owner else ""
    raise ValueError(
        f"{prefix}parameter {name}={value!r} is invalid; allowed: {allowed}"
    )


def _bound_text(op, bound, label):
    return f"{op} {label} = {bound:g}" if label else f"{op} {bound:g}"


def _range_text(low, high, low_open, high_open, head, high_label=None):
    parts = []
    if low is not None:
        parts.append(_bound_text(">" if low_open else ">=", low, None))
    if high is not None:
        parts.append(_bound_text("<" if high_open else "<=", high, high_label))
    return head + (" " + " and ".join(parts) if parts else "")


def check_real(
    value,
    name,
    low=None,
    high=None,
    low_open=False,
    high_open=False,
    owner="",
    high_label=None,
):
    """Return ``float(value)`` if it is a finite real number in the range.

    ``high_label`` names the upper bound in the message when it is derived
    from another parameter (e.g. ``"kernel_size / 2"``).
    """
    allowed = _range_text(low, high, low_open, high_open, "a finite number", high_label)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        fail(owner, name, value, allowed)
    value = float(value)
    bad = not math.isfinite(value)
    bad = bad or (low is not None and (value <= low if low_open else value < low))
    bad = bad or (high is not None and (value >= high if high_open else value > high))
    if bad:
        fail(owner, name, value, allowed)
    return value


def check_int(value, name, low=None, high=None, owner="", odd=False, high_label=None):
    """Return ``int(value)`` if it is an integer (not a bool) in [low, high].

    A float with an integral value (``4.0``, as a YAML file may give) is
    accepted. ``odd=True`` also requires an odd value; ``high_label`` names a
    derived upper bound in the message (e.g. ``"min(H, W)"``).
    """
    head = "an odd integer" if odd else "an integer"
    allowed = _range_text(low, high, False, False, head, high_label)
    integral = isinstance(value, numbers.Integral) or (
        isinstance(value, float) and value.is_integer()
    )
    if isinstance(value, bool) or not integral:
        fail(owner, name, value, allowed)
    value = int(value)
    bad = (low is not None and value < low) or (high is not None and value > high)
    if bad or (odd and value % 2 == 0):
        fail(owner, name, value, allowed)
    return value


def check_choice(value, name, choices, owner=""):
    """Return ``value`` if it is one of ``choices``."""
    if value not in choices:
        fail(owner, name, value, "one of " + ", ".join(repr(c) for c in choices))
    return value


def check_bool(value, name, owner=""):
    """Return ``value`` if it is a bool (``True``/``False``)."""
    if not isinstance(value, bool):
        fail(owner, name, value, "True or False")
    return value


def check_dtype(value, name="dtype", owner=""):
    """Return ``value`` if it is a real floating ``torch.dtype``."""
    if not isinstance(value, torch.dtype) or not value.is_floating_point:
        fail(owner, name, value, "a real floating torch dtype (e.g. torch.float32)")
    return value
