"""stocBiO: stochastic bilevel optimiser with a Neumann-series inverse.

Ji, Yang, Liang, "Bilevel Optimization: Convergence Analysis and Enhanced
Design", ICML 2021 (stocBiO and its Neumann-series estimate);
``ALGORITHMS.md`` section 5.

Step k, for a mini-batch of B images (shuffled epochs):

1. K gradient steps x_i <- x_i - (1/L) grad_x E_i(x_i), warm-started from
   image i's last iterate (the paper's y_k^0 = y_{k-1}^K);
2. v_i = eta sum_{j=0}^{Q} (I - eta H_i)^j grad l_i(x_i), eta = 1/L
   (Q Hessian-vector products, Q + 1 terms, as in the paper);
3. theta <- P(theta - alpha_k z), z = -1/B sum_i J_i^T v_i,
   alpha_k = step_size / (k+1)^step_power (the paper: constant).

Cost per step, in oracle calls per sampled image: K ``ll_grad`` + Q ``hvp``
(cost K + Q), plus 1 ``ul_grad`` and 1 ``jvp``; B (K + Q) per step.

Adaptation to one lower-level problem per image: the paper's single inner
variable y, updated with mini-batch gradients, becomes one warm-started x_i
per image; only the sampled images take the K steps. The stochastic Hessians
of the series (a fresh sample per factor in the paper) are the sampled
images' own exact Hessians.

Defaults (constant step, as in the paper): batch 4 (as ISGD), K = 20,
Q = 10, step_size = 100, from a sweep on the default denoising problem
(test PSNR at cost 15000; step sizes {30, 100, 300, 1000, 3000} x K, Q in
{5, 10, 20}, then seeds 0-2 on the best four): 28.6 dB; step 300 drifts to
large L(theta) and ends below the initial PSNR.
"""

from benchmark_utils.hypergradient import lower_level_steps, neumann_inverse
from benchmark_utils.stochastic import DoublyStochasticSolver


class Solver(DoublyStochasticSolver):
    name = "stocBiO"
    parameters = {
        "step_size": [100.0],
        "step_power": [0.0],
        "n_inner": [20],
        "n_neumann": [10],
        "batch_size": [4],
    }
    test_config = {"batch_size": 2, "n_inner": 2, "n_neumann": 2}

    def check_parameters(self):
        self.check_common()
        self.require_int("n_inner", low=1)
        self.require_int("n_neumann", low=0)

    def hypergradient(self, idx):
        """Steps 1-2 for the images ``idx``: returns (x, v, losses)."""
        eta = self.eta()
        self.inner_step = eta
        x = lower_level_steps(
            self.oracles, self.theta, self.memory.get_x(idx), idx, self.n_inner, eta
        )
        self.memory.set_x(idx, x)
        loss, grad_l = self.oracles.ul_grad(x, idx)
        hessian = self.oracles.hessian(self.theta, x, idx)
        v = neumann_inverse(hessian, grad_l, self.n_neumann, eta)
        return x, v, loss

    def step(self):
        idx = self.sampler.next()
        x, v, loss = self.hypergradient(idx)
        self.record_loss(loss.mean())
        self.theta_step(x, v, idx)
