"""Work weights (docs/maths.md section 3.3): analytic counts against CPU time.

For every (task, regulariser) pair on the default problem's shape (16 grey
32 x 32 images, the objective's default model sizes), prints the analytic
weight of each oracle (``CountedOracles.work_weights``, gradient-equivalents)
and its measured CPU time per call relative to one ``ll_grad``, timed in
interleaved rounds in one process (process CPU time, median over rounds, one
thread), and the ratio measured / analytic. ``--markdown`` prints the README
table of the weights instead.

Usage::

    OMP_NUM_THREADS=1 python tools/work_weights.py [--rounds 15] [--markdown]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark_utils.forward import make_forward  # noqa: E402
from benchmark_utils.oracles import CountedOracles  # noqa: E402
from benchmark_utils.regularisers import make_regulariser  # noqa: E402

TASKS = ("denoising", "deblurring", "inpainting")
MODELS = (
    ("foe", {"n_filters": 8, "kernel_size": 5}),
    ("crr", {"n_filters": 8, "kernel_size": 5}),
    ("icnn", {"n_filters": 8, "kernel_size": 5}),
    ("tv", {}),
)
ORACLES = ("ll_grad", "hvp", "hess_build", "jvp", "jvp_per_image", "ul_grad")


def problem(task, name, kwargs, n=16, size=32):
    shape = (1, size, size)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n, *shape, generator=gen)
    fwd = make_forward(task, image_shape=shape, seed=0)
    reg = make_regulariser(name, 1, **kwargs)
    o = CountedOracles(reg, fwd, x, fwd.measure(x, seed=0), mu=1e-3)
    return o, o.init_theta(0), x


def calls(o, theta, x):
    """One closure per oracle, each a batched call on all images."""
    idx = torch.arange(x.shape[0])
    hess = o.hessian(theta, x, idx)
    q = torch.randn_like(x)
    return {
        "ll_grad": lambda: o.ll_grad(theta, x, idx),
        "hvp": lambda: hess(q),
        "hess_build": lambda: o.hessian(theta, x, idx),
        "jvp": lambda: o.jvp(theta, x, q, idx),
        "jvp_per_image": lambda: o.jvp(theta, x, q, idx, per_image=True),
        "ul_grad": lambda: o.ul_grad(x, idx),
    }


def measure(fns, rounds, repeat=5):
    """Median process CPU time per call of each function, interleaved."""
    times = {k: [] for k in fns}
    for fn in fns.values():  # warm-up
        fn()
    for _ in range(rounds):
        for key, fn in fns.items():
            t0 = time.process_time()
            for _ in range(repeat):
                fn()
            times[key].append((time.process_time() - t0) / repeat)
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.markdown:
        print("| task | regulariser | " + " | ".join(ORACLES) + " |")
        print("|---|---|" + "---|" * len(ORACLES))
    for task in TASKS:
        for name, kwargs in MODELS:
            o, theta, x = problem(task, name, kwargs)
            w = o.work_weights
            if args.markdown:
                cells = " | ".join(f"{w[k]:.2f}" for k in ORACLES)
                print(f"| {task} | {name} | {cells} |")
                continue
            t = measure(calls(o, theta, x), args.rounds)
            print(f"\n{task}, {name}: oracle, analytic weight, measured, ratio")
            for k in ORACLES:
                rel = t[k] / t["ll_grad"]
                print(f"  {k:14s} {w[k]:6.2f} {rel:6.2f} {rel / w[k]:6.2f}")


if __name__ == "__main__":
    main()
