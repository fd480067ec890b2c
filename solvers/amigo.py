"""AmIGO (Arbel, Mairal, ICLR 2022), gradient descent as both inner solvers.

Per sampled image K = ``n_inner`` lower-level steps and T = ``n_linear``
warm-started adjoint steps (cost K + T), then the theta step, with the
anchor's steps (``docs/maths.md`` section 5.4).
"""

from benchmark_utils.hypergradient import linear_system_steps
from benchmark_utils.stochastic import RatioStepSolver, stochastic_parameters


class Solver(RatioStepSolver):
    name = "AmIGO"
    # step_size, outer_ratio: docs/tuning.md (validation scores only)
    parameters = stochastic_parameters(
        step_size=1.9, outer_ratio=0.0006, n_inner=30, n_linear=10
    )
    test_config = {"batch_size": 2, "n_inner": 2, "n_linear": 2}

    def adjoint(self, hessian, grad_l, idx, eta):
        v0 = self.memory.get_q(idx)
        v = linear_system_steps(hessian, v0, grad_l, self.n_linear, self.inner_step)
        self.memory.set_q(idx, v)
        return v
