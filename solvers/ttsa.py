"""TTSA: two-timescale stochastic approximation for bilevel problems.

Hong, Wai, Wang, Yang, "A Two-Timescale Stochastic Algorithm Framework for
Bilevel Optimization: Complexity Analysis and Application to Actor-Critic",
SIAM J. Optim. 33(1), 2023 (Algorithm 1, estimate (9));
``ALGORITHMS.md`` section 5.

Step k, for a mini-batch of B images (shuffled epochs):

1. one lower-level step x_i <- x_i - beta_k grad_x E_i(x_i), warm-started,
   beta_k = (1/L) / (k+1)^inner_power (fast time scale, the paper's k^-2/5);
2. per image an independent length p_i uniform on {0, ..., N-1} (from
   ``self.generator``) and v_i = N eta (I - eta H_i)^{p_i} grad l_i(x_i),
   eta = 1/L, an unbiased estimate of the N-term Neumann series;
3. theta <- P(theta - alpha_k z), z = -1/B sum_i J_i^T v_i,
   alpha_k = step_size / (k+1)^step_power (slow time scale, k^-3/5).

Cost per step, in oracle calls per sampled image: 1 ``ll_grad`` + p_i
``hvp`` (cost 1 + p_i, (N+1)/2 on average), plus 1 ``ul_grad`` and 1 ``jvp``.
The drawn lengths are kept in ``self.neumann_lengths``.

Adaptation to one lower-level problem per image: the paper's shared y
becomes per-image x_i (warm-started); only sampled images move, one step per
visit. The Hessian factors of the series are the image's own exact Hessian.

Defaults: batch 4 (as ISGD), exponents 2/5 and 3/5 (the paper), N = 20 and
step_size from a sweep on the default denoising problem (cost 15000,
seeds 0-2, step sizes 10-3000, N in {10, 20, 50}).
"""

from benchmark_utils.sampling import decay
from benchmark_utils.stochastic import DoublyStochasticSolver, random_neumann


class Solver(DoublyStochasticSolver):
    name = "TTSA"
    parameters = {
        "step_size": [300.0],
        "step_power": [0.6],
        "inner_power": [0.4],
        "n_neumann": [20],
        "batch_size": [4],
    }
    test_config = {"batch_size": 2, "n_neumann": 3}

    def check_parameters(self):
        self.check_common()
        self.require("inner_power", 0 <= self.inner_power <= 1, "0 to 1")
        self.require("n_neumann", self.n_neumann >= 1, "integer >= 1")

    def step(self):
        idx = self.sampler.next()
        o = self.oracles
        eta = self.eta()
        beta = decay(self.n_outer, eta, self.inner_power)
        self.inner_step = beta
        x = self.memory.get_x(idx)
        x = x - beta * o.ll_grad(self.theta, x, idx)
        self.memory.set_x(idx, x)
        loss, grad_l = o.ul_grad(x, idx)
        lengths = self.draw_lengths(idx.numel(), self.n_neumann)
        hessian = o.hessian(self.theta, x, idx)
        v = random_neumann(hessian, grad_l, lengths, self.n_neumann, eta)
        self.record_loss(loss.mean())
        self.theta_step(x, v, idx)
