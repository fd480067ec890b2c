"""AmIGO: amortized implicit gradient optimisation.

Arbel, Mairal, "Amortized Implicit Differentiation for Stochastic Bilevel
Optimization", ICLR 2022 (AmIGO with gradient descent as both inner
solvers); ``docs/maths.md`` section 5.

The step of :class:`~benchmark_utils.stochastic.DoublyStochasticSolver`
with K = ``n_inner`` warm-started gradient steps of size 1/L on each sampled
E_i, then T = ``n_linear`` gradient steps

    v_i <- v_i - (1/L) (H_i v_i - grad l_i(x_i))

on 1/2 v'H_i v - grad l_i'v, warm-started from v_i's last iterate (the
amortisation that gives the method its name). The paper's step is constant
(``step_power=0``).

Cost per step, in oracle calls per sampled image: K ``ll_grad`` + T ``hvp``
(cost K + T), plus 1 ``ul_grad`` and 1 ``jvp``.

Adaptation to one lower-level problem per image: the paper's shared inner
variable y and adjoint v become per-image x_i and v_i, both warm-started
from the image's previous visit; only sampled images move.
"""

from benchmark_utils.hypergradient import linear_system_steps
from benchmark_utils.stochastic import DoublyStochasticSolver, stochastic_parameters


class Solver(DoublyStochasticSolver):
    name = "AmIGO"
    # step_size: tuned on the three default problems by the protocol of
    # docs/tuning.md (validation PSNR only; scripts/tune.py --defaults)
    parameters = stochastic_parameters(step_size=10.0, n_inner=10, n_linear=20)
    test_config = {"batch_size": 2, "n_inner": 2, "n_linear": 2}

    def adjoint(self, hessian, grad_l, idx, eta):
        v0 = self.memory.get_q(idx)
        v = linear_system_steps(hessian, v0, grad_l, self.n_linear, eta)
        self.memory.set_q(idx, v)
        return v
