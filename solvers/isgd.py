"""ISGD: inexact stochastic gradient descent for bilevel learning.

Salehi, Mukherjee, Roberts, Ehrhardt, "Bilevel Learning with Inexact
Stochastic Gradients" (arXiv 2412.12049), and "Bilevel Learning via Inexact
Stochastic Gradient Descent" (arXiv 2511.06774) for the schedules and Adam.
``docs/maths.md`` section 5.

Step k: draw a mini-batch (shuffled epochs), compute the inexact IFT
hypergradient z at accuracy eps_k (lower-level gradient norm) and
delta_k = delta_ratio * eps_k (CG residual relative to ||grad l_i||: the MSE
gradient is O(1/sqrt(d)), so an absolute residual tied to eps_k would stop CG
before it starts), both warm-started per image,
then theta <- P(theta - alpha_k z) (``sgd``) or an Adam step on z (``adam``),
with P the regulariser's projection (zero-mean filters).

    alpha_k = alpha_0 / s(k)^q,   eps_k = eps_0 / s(k)^p,
    s(k) = k + 1 (``schedule="poly"``) or log(k + e) (``schedule="log"``).

q = 0 gives the fixed step, q > 0 the decreasing step ("DS"). Cost per step:
the lower-level and CG iterations of the sampled images (adaptive).
"""

import torch

from benchmark_utils.bilevel_solver import BilevelSolver
from benchmark_utils.hypergradient import inexact_hypergradient
from benchmark_utils.sampling import EpochSampler, decay
from benchmark_utils.solver_ranges import (
    require_accuracy,
    require_relative_ratio,
    require_step_size,
)


class Solver(BilevelSolver):
    name = "ISGD"
    # step_size: tuned on the three default problems by the protocol of
    # docs/tuning.md (validation loss only; scripts/tune.py --defaults)
    parameters = {
        "step_size": [1000.0],
        "q": [0.0, 0.5],
        "eps0": [1e-2],
        "p": [0.5],
        "schedule": ["poly"],
        "delta_ratio": [1.0],
        "batch_size": [4],
        "optimizer": ["sgd"],
    }
    test_config = {"batch_size": 2}

    def check_parameters(self):
        require_step_size(self)
        self.require_real("q", low=0)
        self.require_real("p", low=0)
        require_accuracy(self, "eps0")
        require_relative_ratio(self)
        self.require_choice("schedule", ("poly", "log"))
        self.require_choice("optimizer", ("sgd", "adam"))
        self.require_int("batch_size", low=1, high=self.problem.n_images)

    def init_state(self):
        self.sampler = EpochSampler(
            self.problem.n_images, self.batch_size, self.seed, self.device
        )
        self.adam = None
        if self.optimizer == "adam":
            param = torch.nn.Parameter(self.theta.clone())
            self.adam = torch.optim.Adam([param], lr=self.step_size)
        self.alpha = self.step_size
        self.eps = self.eps0

    def step(self):
        k = self.n_outer
        self.alpha = decay(k, self.step_size, self.q, self.schedule)
        self.eps = decay(k, self.eps0, self.p, self.schedule)
        idx = self.sampler.next()
        hg = inexact_hypergradient(
            self.oracles,
            self.theta,
            idx,
            self.eps,
            self.delta_ratio * self.eps,
            memory=self.memory,
            relative_delta=True,
        )
        self.record_loss(hg.loss.mean())
        if self.adam is None:
            theta = self.theta - self.alpha * hg.z
        else:
            (param,) = self.adam.param_groups[0]["params"]
            self.adam.param_groups[0]["lr"] = self.alpha
            param.grad = hg.z.clone()
            self.adam.step()
            theta = param.data
        self.theta = self.oracles.project(theta)
        if self.adam is not None:
            self.adam.param_groups[0]["params"][0].data.copy_(self.theta)

    def info(self):
        return {"step_size": self.alpha, "accuracy": self.eps}
