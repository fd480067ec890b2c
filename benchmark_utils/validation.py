"""Parameter checks with one-line messages naming the parameter and its range.

Values arriving from benchopt's command line can be strings (``inf``,
``nan``, any word), floats where ints are expected, or bools; every check
rejects those with a ``ValueError`` rather than letting a ``TypeError`` or a
silent truncation happen later.
"""

from __future__ import annotations

import math
import numbers


def _fail(owner, name, value, allowed):
    prefix = f"{owner}: " if owner else ""
    raise ValueError(
        f"{prefix}parameter {name}={value!r} is invalid; allowed: {allowed}"
    )


def _range_text(low, high, low_open, high_open, kind):
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    head = "a finite number" if kind == "number" else "an integer"
    return head + (" " + " and ".join(parts) if parts else "")


def check_real(
    value, name, low=None, high=None, low_open=False, high_open=False, owner=""
):
    """Return ``float(value)`` if it is a finite real number in the range."""
    allowed = _range_text(low, high, low_open, high_open, "number")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        _fail(owner, name, value, allowed)
    value = float(value)
    bad = not math.isfinite(value)
    bad = bad or (low is not None and (value <= low if low_open else value < low))
    bad = bad or (high is not None and (value >= high if high_open else value > high))
    if bad:
        _fail(owner, name, value, allowed)
    return value


def check_int(value, name, low=None, high=None, owner=""):
    """Return ``int(value)`` if it is an integer (not a bool) in [low, high]."""
    allowed = _range_text(low, high, False, False, "integer")
    integral = isinstance(value, numbers.Integral) or (
        isinstance(value, float) and value.is_integer()
    )
    if isinstance(value, bool) or not integral:
        _fail(owner, name, value, allowed)
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        _fail(owner, name, value, allowed)
    return value


def check_choice(value, name, choices, owner=""):
    """Return ``value`` if it is one of ``choices``."""
    if value not in choices:
        _fail(owner, name, value, "one of " + ", ".join(repr(c) for c in choices))
    return value


def check_bool(value, name, owner=""):
    """Return ``value`` if it is a bool (``True``/``False``)."""
    if not isinstance(value, bool):
        _fail(owner, name, value, "True or False")
    return value
