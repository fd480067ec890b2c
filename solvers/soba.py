"""SOBA (Dagreou, Ablin, Vaiter, Moreau, NeurIPS 2022), a single loop on (x, v, theta).

Per sampled image one step on x_i and one on v_i, then the theta step, with
the anchor's steps (``docs/maths.md`` section 5.4). Cost per sampled image:
1 ``ll_grad`` + 1 ``hvp``, plus 1 ``ul_grad`` and 1 ``jvp``.
"""

from benchmark_utils.stochastic import RatioStepSolver, stochastic_parameters


class Solver(RatioStepSolver):
    name = "SOBA"
    # step_size, outer_ratio: docs/tuning.md (validation scores only)
    parameters = stochastic_parameters(step_size=1.9, outer_ratio=0.5)
    test_config = {"batch_size": 2}

    def lower_level(self, idx, eta):
        self.inner_step = self.inner_step_size(eta)
        x = self.memory.get_x(idx)
        d_x = self.oracles.ll_grad(self.theta, x, idx)
        self.memory.set_x(idx, x - self.inner_step * d_x)
        return x

    def adjoint(self, hessian, grad_l, idx, eta):
        v = self.memory.get_q(idx)
        self.memory.set_q(idx, v - self.inner_step * (hessian(v) - grad_l))
        return v
