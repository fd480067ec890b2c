"""AmIGO: amortized implicit gradient optimisation.

Arbel, Mairal, "Amortized Implicit Differentiation for Stochastic Bilevel
Optimization", ICLR 2022 (Algorithm 1 with gradient descent as the inner
solvers, "AmIGO-GD"); ``ALGORITHMS.md`` section 5.

Step k, for a mini-batch of B images (shuffled epochs):

1. K gradient steps on E_i, step 1/L, warm-started from x_i's last iterate;
2. T gradient steps v_i <- v_i - (1/L) (H_i v_i - grad l_i(x_i)) on
   1/2 v'H_i v - grad l_i'v, warm-started from v_i's last iterate (the
   amortisation that gives the method its name);
3. theta <- P(theta - alpha_k z), z = -1/B sum_i J_i^T v_i,
   alpha_k = step_size / (k+1)^step_power (the paper: constant).

Cost per step, in oracle calls per sampled image: K ``ll_grad`` + T ``hvp``
(cost K + T), plus 1 ``ul_grad`` and 1 ``jvp``; B (K + T) per step.

Adaptation to one lower-level problem per image: the paper's shared inner
variable y and adjoint v become per-image x_i and v_i, both warm-started
from the image's previous visit; only sampled images move.

Defaults: batch 4 (as ISGD); K = T = 10 and step_size from a sweep on the
default denoising problem (cost 15000, seeds 0-2, step sizes 10-3000, K and
T in {5, 10, 20, 50}).
"""

from benchmark_utils.hypergradient import linear_system_steps, lower_level_steps
from benchmark_utils.stochastic import DoublyStochasticSolver


class Solver(DoublyStochasticSolver):
    name = "AmIGO"
    parameters = {
        "step_size": [300.0],
        "step_power": [0.0],
        "n_inner": [10],
        "n_linear": [10],
        "batch_size": [4],
    }
    test_config = {"batch_size": 2, "n_inner": 2, "n_linear": 2}

    def check_parameters(self):
        self.check_common()
        self.require("n_inner", self.n_inner >= 1, "integer >= 1")
        self.require("n_linear", self.n_linear >= 1, "integer >= 1")

    def step(self):
        idx = self.sampler.next()
        eta = self.eta()
        self.inner_step = eta
        x = lower_level_steps(
            self.oracles, self.theta, self.memory.get_x(idx), idx, self.n_inner, eta
        )
        loss, grad_l = self.oracles.ul_grad(x, idx)
        hessian = self.oracles.hessian(self.theta, x, idx)
        v = linear_system_steps(
            hessian, self.memory.get_q(idx), grad_l, self.n_linear, eta
        )
        self.memory.set_x(idx, x)
        self.memory.set_q(idx, v)
        self.record_loss(loss.mean())
        self.theta_step(x, v, idx)
