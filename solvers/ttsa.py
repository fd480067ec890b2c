"""TTSA: two-timescale stochastic approximation for bilevel problems.

Hong, Wai, Wang, Yang, "A Two-Timescale Stochastic Algorithm Framework for
Bilevel Optimization: Complexity Analysis and Application to Actor-Critic",
SIAM J. Optim. 33(1), 2023 (TTSA with the random-length Neumann estimate
of the hypergradient); ``docs/maths.md`` section 5.

Per step, for a mini-batch of B images
(:class:`~benchmark_utils.stochastic.RandomNeumannSolver` with K = 1):

1. one warm-started lower-level step x_i <- x_i - beta_k grad_x E_i(x_i),
   beta_k = (1/L) / (k+1)^inner_power (the fast time scale);
2. the random-length Neumann estimate of H_i^{-1} grad l_i(x_i), N =
   ``n_neumann``;
3. theta <- P(theta - alpha_k z), alpha_k = step_size / (k+1)^step_power
   (the slow time scale).

The paper's two time scales are alpha_k ~ k^-3/5 for theta and
beta_k ~ k^-2/5 for the lower level, i.e. ``step_power=0.6,
inner_power=0.4``; the defaults are constant steps (``docs/tuning.md``).

Cost per step, in oracle calls per sampled image: 1 ``ll_grad`` + p_i
``hvp`` (cost 1 + p_i, (N+1)/2 on average), plus 1 ``ul_grad`` and 1 ``jvp``.

Adaptation to one lower-level problem per image: the paper's shared y
becomes per-image x_i (warm-started); only sampled images move, one step
per visit. The Hessian factors of the series are the image's own Hessian.
"""

from benchmark_utils.sampling import decay
from benchmark_utils.stochastic import RandomNeumannSolver, stochastic_parameters


class Solver(RandomNeumannSolver):
    name = "TTSA"
    # step_size: tuned on the three default problems by the protocol of
    # docs/tuning.md (validation loss only; scripts/tune.py --defaults)
    parameters = stochastic_parameters(step_size=30.0, inner_power=0.0, n_neumann=2)
    test_config = {"batch_size": 2, "n_neumann": 3}

    def check_parameters(self):
        super().check_parameters()
        self.require_real("inner_power", low=0, high=1)

    def inner_steps(self):
        """K = 1: one lower-level step per visit."""
        return 1

    def inner_step_size(self, eta):
        """beta_k = eta / (k+1)^inner_power."""
        return decay(self.n_outer, eta, self.inner_power)
