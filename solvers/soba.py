"""SOBA: stochastic bilevel algorithm, a single loop on (x, v, theta).

Dagreou, Ablin, Vaiter, Moreau, "A framework for bilevel optimization that
enables stochastic and global variance reduction algorithms", NeurIPS 2022
(SOBA); ``docs/maths.md`` section 5.

Step k, for a mini-batch of B images (shuffled epochs), all directions
evaluated at the current (x_i, v_i, theta):

    D_x = grad_x E_i(x_i),  D_v = H_i(x_i) v_i - grad l_i(x_i),
    D_theta = -1/B sum_i J_i(x_i)^T v_i,
    x_i <- x_i - rho_k D_x,  v_i <- v_i - rho_k D_v,
    theta <- P(theta - gamma_k D_theta),

with rho_k = (1/L) / (k+1)^step_power and
gamma_k = step_size / (k+1)^step_power. Here v_i approximates
+H_i^{-1} grad l_i (the paper's v has the opposite sign). In the template
of :class:`~benchmark_utils.stochastic.DoublyStochasticSolver` the two hooks
return the current x_i and v_i and store their moved values.

The paper's analysis decays both steps like k^-1/2 (``step_power=0.5``),
and so does its authors' benchopt bilevel benchmark (steps c / (k+1)^0.5);
the default here is constant steps, ``step_power=0`` (``docs/tuning.md``
says why).

Cost per step, in oracle calls per sampled image: 1 ``ll_grad`` + 1 ``hvp``
(cost 2), plus 1 ``ul_grad`` and 1 ``jvp``.

Adaptation to one lower-level problem per image: the shared inner variable z
and linear-system variable v of the paper become per-image x_i and v_i; only
the sampled images move, each by one step per visit.
"""

from benchmark_utils.sampling import decay
from benchmark_utils.stochastic import DoublyStochasticSolver, stochastic_parameters


class Solver(DoublyStochasticSolver):
    name = "SOBA"
    # step_size: tuned on the three default problems by the protocol of
    # docs/tuning.md (validation PSNR only; scripts/tune.py --defaults)
    parameters = stochastic_parameters(step_size=0.5)
    test_config = {"batch_size": 2}

    def inner_step_size(self, eta):
        """rho_k = eta / (k+1)^step_power."""
        return decay(self.n_outer, eta, self.step_power)

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
