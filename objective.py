"""Bilevel learning of a variational regulariser (``docs/maths.md`` s. 1-3).

Every solver gets the same training problem, initial theta (drawn from the
objective's seed), cost budget (``cost = ll_grad + hvp`` per image, counted by
the oracles) and grid of cost checkpoints. ``evaluate_result`` sees only theta
and the counters; :class:`~benchmark_utils.evaluation.Evaluation` scores theta
on the training, validation and test images with uncounted oracles. Only the
validation scores may choose anything (``docs/tuning.md``).
"""

import time

import numpy as np
import torch
from benchopt import BaseObjective
from benchopt.stopping_criterion import NoCriterion

from benchmark_utils import REQUIREMENTS
from benchmark_utils.cache_key import UtilsDigest
from benchmark_utils.evaluation import Evaluation
from benchmark_utils.oracles import COUNTER_NAMES
from benchmark_utils.problem import BilevelProblem, cost_checkpoints
from benchmark_utils.regularisers import REGULARISERS, make_regulariser
from benchmark_utils.validation import (
    check_choice,
    check_device,
    check_int,
    check_mu,
    check_real,
    check_threads,
)

#: largest budget (lower-level gradients per image; keeps the grid in int64)
MAX_BUDGET = 10**9
#: most filters (or last-layer channels): 10-100x the papers' 10 and 48
MAX_N_FILTERS = 1024
#: range of eval_tol, the evaluation's RMS lower-level gradient (docs/cli.md)
EVAL_TOL = (1e-5, 1e-3)


class Objective(UtilsDigest, BaseObjective):
    name = "Bilevel imaging"
    url = "https://github.com/benchopt/benchmark_bilevel_imaging"
    min_benchopt_version = "1.10"
    requirements = REQUIREMENTS

    sampling_strategy = "callback"
    # solvers stop themselves at the cost budget: no patience rule
    stopping_criterion = NoCriterion(strategy="callback")

    parameters = {
        "regulariser": ["foe"],
        "n_filters": [8],
        "kernel_size": [5],
        "boundary": ["default"],
        "init": ["default"],
        "mu": [1e-3],
        "budget": [16_000],
        "n_checkpoints": [8],
        "eval_tol": [1e-4],
        "device": ["auto"],
        "n_threads": [1],
    }
    test_config = {
        "budget": 400,
        "n_checkpoints": 3,
        "n_filters": 2,
        "dataset": {
            "name": "denoising",
            "n_train": 4,
            "n_val": 1,
            "n_test": 1,
            "patch_size": 16,
            "image_size": 32,
        },
    }

    def set_data(self, train, val, test, task, setup_error=None):
        """Validate the parameters and build the problem; never raises.

        benchopt 1.10 calls ``set_data`` outside its per-cell error handling,
        so an error (or a dataset's ``setup_error``) is kept and raised by
        :meth:`get_objective`, inside each cell, before any cost is spent.
        """
        self._setup_error = setup_error
        if setup_error is not None:
            return
        try:
            self._build(dict(train=train, val=val, test=test), task)
        except Exception as err:  # raised again, per cell, by get_objective
            self._setup_error = err

    def _build(self, data, task):
        # validated values go to private names: benchopt refuses a run whose
        # parameters set_data changed
        own = self.name
        check_choice(self.regulariser, "regulariser", sorted(REGULARISERS), own)
        n_filters = check_int(self.n_filters, "n_filters", 1, MAX_N_FILTERS, own)
        patch = min(data["train"].x.shape[-2:])
        kernel_size = check_int(self.kernel_size, "kernel_size", 1, patch, own)
        mu = check_mu(self.mu, data["train"].forward, own)
        self._budget = check_int(self.budget, "budget", 1, MAX_BUDGET, own)
        n_checkpoints = check_int(self.n_checkpoints, "n_checkpoints", 1, 1000, own)
        eval_tol = check_real(self.eval_tol, "eval_tol", *EVAL_TOL, owner=own)
        # before any tensor work; set_data runs in every process that runs a cell
        torch.set_num_threads(check_threads(self.n_threads, own))
        self.dev = check_device(self.device, own)
        self.task = task
        data = {name: s.to(self.dev) for name, s in data.items()}
        self.train, self.test = data["train"], data["test"]
        self.reg = make_regulariser(
            self.regulariser,
            self.train.x.shape[1],
            n_filters=n_filters,
            kernel_size=kernel_size,
            **self._model_options(own),
        )
        self.problem = BilevelProblem(
            self.reg, self.train.forward, self.train.x, self.train.y, mu
        )
        self.checkpoints = cost_checkpoints(self._budget, n_checkpoints)
        options = tuple(getattr(self.reg, k, None) for k in ("boundary", "init"))
        key = (self.regulariser, n_filters, kernel_size, options, str(self.dev))
        self.evaluation = Evaluation(self.reg, data, mu, eval_tol, key)

    def _model_options(self, owner):
        """``boundary`` and ``init`` for a regulariser that declares them
        (``boundaries``, ``inits``; docs/regularisers.md); ``default``: its own."""
        cls, options = REGULARISERS[self.regulariser], {}
        for key, declared in (("boundary", "boundaries"), ("init", "inits")):
            value = getattr(self, key)
            allowed = ("default", *getattr(cls, declared, ()))
            check_choice(value, key, allowed, owner)
            if value != "default":
                options[key] = value
        return options

    def get_objective(self):
        if getattr(self, "_setup_error", None) is not None:
            raise self._setup_error
        self.theta0 = self.problem.init_theta(self.get_seed(use_repetition=False))
        return dict(
            problem=self.problem,
            theta0=self.theta0,
            budget=self._budget,
            checkpoints=self.checkpoints,
            device=self.dev,
        )

    def evaluate_result(self, theta, n_outer, diverged, info, **counters):
        """One row of the results (columns: ``docs/report.md``).

        The wall time spent here is kept for :meth:`save_final_results`.
        """
        start = time.perf_counter()
        if n_outer == 0 and all(int(counters[n]) == 0 for n in COUNTER_NAMES):
            self._eval_seconds = 0.0  # a new run
        ev = self.evaluation
        theta = theta.to(device=self.dev, dtype=self.train.x.dtype)
        # a new run starts from the cached theta0 evaluation: evaluation warm
        # starts never leak between runs
        out = ev.evaluate_init(theta) if n_outer == 0 else ev.evaluate(theta)
        out.update(ev.measurement, **ev.init_columns(self.theta0))
        out.update({name: int(counters[name]) for name in COUNTER_NAMES})
        out["cost"] = out["ll_grad"] + out["hvp"]
        out["work"] = float(counters.get("work", 0.0))
        out["n_outer"] = int(n_outer)
        out["diverged"] = int(diverged)
        out["status"] = ev.status(out["value"], str(counters.get("status", "ok")))
        out.update({key: float(val) for key, val in (info or {}).items()})
        self._eval_seconds = getattr(self, "_eval_seconds", 0.0)
        self._eval_seconds += time.perf_counter() - start
        return out

    def get_one_result(self):
        zeros = dict.fromkeys(COUNTER_NAMES, 0)
        zeros["work"] = 0.0
        return dict(theta=self.theta0.cpu(), n_outer=0, diverged=0, info={}, **zeros)

    def save_final_results(self, theta, **kwargs):
        """Final theta, learned filters and test images for the plots, and
        ``eval_seconds``, the wall time spent in :meth:`evaluate_result`."""
        theta = theta.detach().cpu()
        out = {
            "theta": theta.numpy().astype(np.float32),
            **self.evaluation.artefacts(),
            "eval_seconds": float(getattr(self, "_eval_seconds", 0.0)),
        }
        views = self.reg.unpack(theta)
        for key in ("filters", "log_weights"):
            if key in views:
                out[key] = views[key].numpy().astype(np.float32)
        return out
