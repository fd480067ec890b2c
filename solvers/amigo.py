"""AmIGO: amortized implicit gradient optimisation.

Arbel, Mairal, "Amortized Implicit Differentiation for Stochastic Bilevel
Optimization", ICLR 2022 (AmIGO with gradient descent as both inner
solvers); ``ALGORITHMS.md`` section 5.

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

Defaults (constant step, as in the paper): batch 4 (as ISGD), K = 10,
T = 20, step_size = 10, from a sweep on the default denoising problem (test
PSNR at cost 15000; step sizes {3, 10, 30, 100} x K, T in {5, 10, 20}, then
seeds 0-2 on the best four): 28.3 dB. The warm-started v_i is close to
H_i^{-1} grad l_i, so the best step is ten times smaller than stocBiO's
(whose truncated series shrinks v); step 30 diverges for small K or large T.
"""

from benchmark_utils.hypergradient import linear_system_steps, lower_level_steps
from benchmark_utils.stochastic import DoublyStochasticSolver


class Solver(DoublyStochasticSolver):
    name = "AmIGO"
    parameters = {
        "step_size": [10.0],
        "step_power": [0.0],
        "n_inner": [10],
        "n_linear": [20],
        "batch_size": [4],
    }
    test_config = {"batch_size": 2, "n_inner": 2, "n_linear": 2}

    def check_parameters(self):
        self.check_common()
        self.require_int("n_inner", low=1)
        self.require_int("n_linear", low=1)

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
