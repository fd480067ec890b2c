"""BSA: bilevel stochastic approximation.

Ghadimi, Wang, "Approximation Methods for Bilevel Programming",
arXiv 1802.02246, 2018 (the BSA algorithm and its random-length Neumann
estimate of the hypergradient); ``docs/maths.md`` section 5.

TTSA with K = ``n_inner`` lower-level steps per visit
(:class:`~benchmark_utils.stochastic.RandomNeumannSolver`): K warm-started
gradient steps of size 1/L on each sampled E_i (exact per-image gradients,
so the constant step 1/L replaces the paper's decreasing steps for a
stochastic inner problem), the random-length Neumann estimate of
H_i^{-1} grad l_i with N = ``n_neumann``, and the decreasing outer step
alpha_k = step_size / (k+1)^step_power (1/2 by default, as in the paper).

Cost per step, in oracle calls per sampled image: K ``ll_grad`` + p_i
``hvp`` (cost K + p_i, K + (N-1)/2 on average), plus 1 ``ul_grad`` and 1
``jvp``.

Adaptation to one lower-level problem per image: the paper's shared y
becomes per-image x_i, warm-started; only sampled images take the K steps.
The paper lets K grow with k; here K is fixed, as in the ISGD papers'
comparison.
"""

from benchmark_utils.stochastic import RandomNeumannSolver, stochastic_parameters


class Solver(RandomNeumannSolver):
    name = "BSA"
    # step_size: tuned on the three default problems by the protocol of
    # docs/tuning.md (validation loss only; scripts/tune.py --defaults)
    parameters = stochastic_parameters(
        step_size=3000.0, step_power=0.5, n_inner=50, n_neumann=10
    )
    test_config = {"batch_size": 2, "n_inner": 2, "n_neumann": 3}
