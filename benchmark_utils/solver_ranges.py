"""Allowed ranges of the solvers' step sizes and accuracies.

A value outside these ranges makes the run meaningless rather than merely
slow, so it is refused before any cost with a one-line ``ValueError``
naming the parameter and the range (through ``BilevelSolver.require_real``).
A value that is not a positive finite number is refused first with the
plain "> 0" message, then a positive one outside the range with the range.

- Step sizes: :data:`STEP_SIZE_RANGE`. On the benchmark's problems
  ||z|| / ||theta|| is about 2e-3 at theta0 (float32, 4 filters, denoising
  and deblurring), so a step below 1e-4 changes theta by less than the
  float32 rounding of theta (1.2e-7 relative) once the hypergradient has
  shrunk a little: the curve stays at theta0. Large steps are legitimate
  experiments (they diverge and the run is flagged ``diverged``; the run
  tests use 1e8), so the upper end, 1e10, only refuses what is surely a
  typo: one such step moves theta by about 2e7 times its norm.
- Accuracies (absolute lower-level gradient norms and conjugate-gradient
  residuals): :data:`ACCURACY_RANGE`. Below 1e-12 even a float64 gradient
  norm is mostly rounding (a few hundred machine epsilons times
  ||A^T y_i||, which is of order 10 on these patches; float32 runs floor the
  accuracy far above, see ``benchmark_utils.full_batch``); above 1e2 the
  lower level is never solved (the gradient norm at the start A^T y_i is
  1-2 on these problems).
- Relative conjugate-gradient tolerances ``delta_ratio * eps0``: in
  [1e-12, 1). At 1 or above, the first conjugate gradient (started from
  q = 0, residual ||grad l_i||) stops before its first iteration, z = 0 and
  theta never moves.
"""

from __future__ import annotations

#: allowed [low, high] of every outer step size (``step_size``)
STEP_SIZE_RANGE = (1e-4, 1e10)
#: allowed [low, high] of absolute accuracies (``eps0``, ``delta0``)
ACCURACY_RANGE = (1e-12, 1e2)
#: smallest relative conjugate-gradient tolerance ``delta_ratio * eps0``
MIN_RELATIVE_TOL = 1e-12


def require_step_size(solver, name="step_size"):
    """Refuse a step size outside :data:`STEP_SIZE_RANGE`."""
    low, high = STEP_SIZE_RANGE
    solver.require_real(name, low=0, low_open=True)
    solver.require_real(name, low=low, high=high)


def require_accuracy(solver, name):
    """Refuse an absolute accuracy outside :data:`ACCURACY_RANGE`."""
    low, high = ACCURACY_RANGE
    solver.require_real(name, low=0, low_open=True)
    solver.require_real(name, low=low, high=high)


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
