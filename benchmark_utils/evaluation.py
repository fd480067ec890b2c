"""The exact evaluation of theta behind every row of the results (``docs/report.md``).

:class:`Evaluation` solves the lower level of every training, validation and
test image accurately (RMS gradient <= ``eval_tol``, ``docs/maths.md``
section 4), warm-started from the run's previous evaluation, with its own
oracles whose counts are never reported, and scores the solutions
(:mod:`benchmark_utils.metrics`). The first evaluation of a run (theta0 from
cold starts) is the same for every solver and repetition of a cell: it is
computed once per cell and process (:data:`INIT_CACHE`) and replayed bit for
bit. A run whose training loss ends well above its best is marked
``collapsed`` (:data:`COLLAPSE_FACTOR`, ``docs/limits.md``).
"""

from __future__ import annotations

import hashlib
import math
import warnings

import numpy as np
import torch

from .lower_level import solve_lower_level
from .memory import ImageMemory
from .metrics import pooled_psnr, psnr, ssim
from .oracles import CountedOracles

#: images solved and scored together (bounds the evaluation's temporaries)
EVAL_CHUNK = 64
#: iteration cap of an evaluation solve; a solve that reaches it is counted in
#: ``eval_cap_hits`` (the row is then approximate)
EVAL_MAX_ITER = 2_000
#: first evaluations of the last cells of this process, by :attr:`Evaluation.key`
#: (benchopt pickles the objective for every run, so it cannot live on it)
INIT_CACHE = {}
INIT_CACHE_SIZE = 4
#: a run whose training loss is above this many times its best is ``collapsed``
COLLAPSE_FACTOR = 2.0
#: the sets, in the order they are evaluated; SSIM is computed on the last two
SETS = ("train", "val", "test")
#: the metric columns of a row (``docs/report.md``, "Columns")
COLUMNS = (
    "value",
    "psnr_train",
    "pooled_psnr_train",
    "mse_val",
    "psnr_val",
    "pooled_psnr_val",
    "ssim_val",
    "mse_test",
    "psnr_test",
    "pooled_psnr_test",
    "ssim_test",
)
#: test scores drawn as reference lines (measurements, initial theta)
REFERENCES = ("psnr_test", "pooled_psnr_test", "ssim_test")


def _scores(which, x, clean):
    """Per-image MSE, PSNR and (not on training patches) SSIM of ``x``."""
    mse = (x - clean).flatten(1).pow(2).mean(dim=1)
    shown = x.clamp(0, 1)
    out = {"mse": mse, "psnr": psnr(shown, clean)}
    if which != "train":
        out["ssim"] = ssim(shown, clean)
    return out


def _columns(which, per_image):
    """The columns of one set from its per-image scores."""
    cols = {
        f"psnr_{which}": float(per_image["psnr"].mean()),
        f"pooled_psnr_{which}": pooled_psnr(per_image["mse"]),
    }
    if which == "train":
        cols["value"] = float(per_image["mse"].mean())
    else:
        cols[f"mse_{which}"] = float(per_image["mse"].mean())
        cols[f"ssim_{which}"] = float(per_image["ssim"].mean())
    return cols


class Evaluation:
    """Scores of theta on the three sets of one cell.

    Parameters
    ----------
    regulariser : Regulariser
    data : dict
        ``{"train", "val", "test"}``: :class:`~benchmark_utils.tasks.ImageSet`
        on the evaluation device.
    mu, eval_tol : float
        Ridge weight of the lower level; tolerance on its RMS gradient.
    key_extra : tuple
        What else the result depends on (part of :attr:`key`).
    """

    def __init__(self, regulariser, data, mu, eval_tol, key_extra=()):
        self.oracles = {
            name: CountedOracles(regulariser, s.forward, s.x, s.y, mu)
            for name, s in data.items()
        }
        self.eval_tol = eval_tol
        self.memory = {}
        self.key = _digest(data, (*key_extra, mu, eval_tol, EVAL_CHUNK))
        test = data["test"]
        measured = _scores("test", test.y.clamp(0, 1), test.x)
        #: reference columns of the measurements themselves (clamped to [0, 1])
        self.measurement = {
            f"{ref}_measurement": _columns("test", measured)[ref] for ref in REFERENCES
        }
        self.measured_test = measured
        self.last_test = None  # (solutions, per-image scores) of the test set
        self._best = math.inf

    def _solve(self, which, theta):
        """Accurate solutions of one set at theta, and its cap hits."""
        oracles = self.oracles[which]
        memory = self.memory.setdefault(which, ImageMemory(oracles))
        tol = self.eval_tol * math.sqrt(oracles.n_pixels)
        n_cap = 0
        for start in range(0, oracles.n_images, EVAL_CHUNK):
            stop = min(start + EVAL_CHUNK, oracles.n_images)
            idx = torch.arange(start, stop, device=oracles.device)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                res = solve_lower_level(
                    oracles, theta, memory.get_x(idx), idx, tol, max_iter=EVAL_MAX_ITER
                )
            n_cap += res.hit_cap
            memory.set_x(idx, res.x)
        return memory.x, n_cap

    def evaluate(self, theta):
        """The columns of :data:`COLUMNS` and ``eval_cap_hits`` at theta,
        from the current warm starts; NaN for a non-finite theta."""
        self.last_test = None
        if not bool(torch.isfinite(theta).all()):
            return dict.fromkeys(COLUMNS, float("nan")) | {"eval_cap_hits": 0}
        cols, caps = {}, 0
        for which in SETS:
            x, n_cap = self._solve(which, theta)
            caps += n_cap
            per_image = _scores(which, x, self.oracles[which].x_clean)
            cols.update(_columns(which, per_image))
            if which == "test":
                self.last_test = (x, per_image)
        return {key: cols[key] for key in COLUMNS} | {"eval_cap_hits": caps}

    def evaluate_init(self, theta):
        """Columns of a run's first evaluation, theta from cold starts.

        Starts a run (warm starts and the collapse rule's best loss are
        reset); replayed from :data:`INIT_CACHE` when this cell already
        computed it, bit for bit.
        """
        self._best = math.inf
        cache = INIT_CACHE.get(self.key)
        if cache is None or not torch.equal(cache["theta"], theta):
            self.memory = {}
            cols = self.evaluate(theta)
            kept = {which: mem.x.clone() for which, mem in self.memory.items()}
            cache = dict(theta=theta.clone(), cols=cols, memory=kept)
            cache["last_test"] = self.last_test
            INIT_CACHE.pop(self.key, None)
            INIT_CACHE[self.key] = cache
            while len(INIT_CACHE) > INIT_CACHE_SIZE:
                INIT_CACHE.pop(next(iter(INIT_CACHE)))
        self.memory = {}
        for which, x in cache["memory"].items():
            memory = ImageMemory(self.oracles[which])
            memory.x = x.clone()
            self.memory[which] = memory
        self.last_test = cache["last_test"]
        return dict(cache["cols"])

    def init_columns(self, theta0):
        """Reference columns at theta0 (``<score>_init``), leaving the run's
        warm starts as they are."""
        cache = INIT_CACHE.get(self.key)
        if cache is None or not torch.equal(cache["theta"], theta0):
            memory, last, best = self.memory, self.last_test, self._best
            self.evaluate_init(theta0)
            self.memory, self.last_test, self._best = memory, last, best
        cols = INIT_CACHE[self.key]["cols"]
        return {f"{ref}_init": cols[ref] for ref in REFERENCES}

    def status(self, value, solver_status):
        """``collapsed`` when the training loss ``value`` is above
        :data:`COLLAPSE_FACTOR` times its best of the run and the solver
        reports no failure of its own; else ``solver_status``."""
        if math.isfinite(value):
            self._best = min(self._best, value)
        collapsed = value > COLLAPSE_FACTOR * self._best
        if collapsed and solver_status in ("ok", "budget"):
            return "collapsed"
        return solver_status

    def artefacts(self):
        """Every test image (clean, measured, reconstructed) and its scores."""
        oracles = self.oracles["test"]
        out = {
            "clean": _f32(oracles.x_clean),
            "measured": _f32(oracles.y),
            "psnr_measured": _f32(self.measured_test["psnr"]),
            "ssim_measured": _f32(self.measured_test["ssim"]),
        }
        if self.last_test is not None:
            x, per_image = self.last_test
            out["reconstructed"] = _f32(x)
            out["psnr"] = _f32(per_image["psnr"])
            out["ssim"] = _f32(per_image["ssim"])
        return out


def _f32(t):
    return t.detach().cpu().numpy().astype(np.float32)


def _digest(data, extra):
    """Digest of everything an evaluation depends on besides theta."""
    md5 = hashlib.md5()
    for name in SETS:
        s = data[name]
        for t in (s.x, s.y, s.forward.kernel, s.forward.mask):
            if t is not None:
                md5.update(t.detach().cpu().contiguous().numpy().tobytes())
        md5.update(repr(s.forward).encode())
    md5.update(repr(extra).encode())
    return md5.hexdigest()
