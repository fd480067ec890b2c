"""Allowed ranges of the solvers' step sizes and accuracies.

A value outside them makes a run meaningless rather than slow, so it is
refused before any cost with a one-line ``ValueError`` naming the parameter
and its range (a value that is not a positive finite number first gets the
plain "> 0" message).
"""

from __future__ import annotations

#: allowed [low, high] of every outer step size (``step_size``). At theta0
#: ||z|| / ||theta|| is about 2e-3 (float32, default problems): below 1e-4 a
#: step soon moves theta by less than its float32 rounding; 1e10 refuses only
#: typos (large steps are legitimate experiments that end ``diverged``)
STEP_SIZE_RANGE = (1e-4, 1e10)
#: allowed (low, high) of an inner step in units of 1/L(theta) (SOBA, AmIGO):
#: gradient descent on a lower level whose curvature reaches L diverges at 2/L
INNER_STEP_RANGE = (0.0, 2.0)
#: allowed [low, high] of the inner-to-outer step ratio (SOBA, AmIGO): with
#: an inner step of order 1/L(theta0) ~ 1, the outer step stays within
#: STEP_SIZE_RANGE
OUTER_RATIO_RANGE = (1e-10, 1e4)
#: allowed [low, high] of absolute accuracies (``eps0``, ``delta0``): below
#: 1e-12 even a float64 gradient norm is rounding (of order 100 machine
#: epsilons times ||A^T y_i|| ~ 10); above 1e2 nothing is solved (the
#: gradient norm at the start, A^T y_i, is 1-2)
ACCURACY_RANGE = (1e-12, 1e2)
#: smallest relative conjugate-gradient tolerance ``delta_ratio * eps0``; at
#: 1 or above the first CG (from q = 0) stops at once, z = 0 and theta is stuck
MIN_RELATIVE_TOL = 1e-12


def require_positive_in(solver, name, bounds):
    """Refuse parameter ``name`` unless it is > 0 and in ``bounds`` = [low, high]."""
    low, high = bounds
    solver.require_real(name, low=0, low_open=True)
    solver.require_real(name, low=low, high=high)


def require_step_size(solver, name="step_size"):
    """Refuse a step size outside :data:`STEP_SIZE_RANGE`."""
    require_positive_in(solver, name, STEP_SIZE_RANGE)


def require_accuracy(solver, name):
    """Refuse an absolute accuracy outside :data:`ACCURACY_RANGE`."""
    require_positive_in(solver, name, ACCURACY_RANGE)


def require_relative_ratio(solver, name="delta_ratio", eps_name="eps0"):
    """Refuse ``name`` unless ``name * eps_name`` lies in [1e-12, 1).

    Call after :func:`require_accuracy` has checked ``eps_name``.
    """
    solver.require_real(name, low=0, low_open=True)
    eps = getattr(solver, eps_name)
    low, high = MIN_RELATIVE_TOL / eps, 1.0 / eps
    solver.require(
        name,
        low <= getattr(solver, name) < high,
        f"{name} * {eps_name} in [{MIN_RELATIVE_TOL:g}, 1), "
        f"here {name} in [{low:g}, {high:g})",
    )
