"""Speed of the hot path, timed interleaved in one process (``docs/speed.md``).

Every entry of a table is timed in rounds: each round calls every entry once
(the order rotated from round to round), so a change of machine load hits
all entries alike and the ratios stay meaningful on a shared CPU. For each
entry the script reports process CPU time and wall time per image (median
and minimum over the rounds, milliseconds), minor page faults per call
(``resource.getrusage(...).ru_minflt``), and the ratio of its median CPU
time to the reference pair ``raw`` = oneDNN ``conv2d`` + ``conv_transpose2d``
on the same tensors.

Tables:

1. hot path on 64x3x96x96 / 10 filters 7x7 (FoE, arXiv 2412.12049),
   16x1x64x64 / 48 filters 7x7 (arXiv 2308.10098) and the default problem's
   shape 4x1x32x32 / 8 filters 5x5 (denoising, ``objective.py`` defaults):
   raw pairs (``raw``: conv2d + conv_transpose2d, ``raw_flip``: conv2d +
   conv2d with flipped filters, ``raw_nnpack``: the NNPACK pair), counted
   ``ll_grad`` and ``hvp`` (curvature cached, as in conjugate gradient) with
   the automatic backend and forced to ``flip`` (the implementation before
   :mod:`benchmark_utils.conv_backend`), the mixed product ``jvp``, and a
   20-iteration lower-level solve;
2. one ISGD step on the default problem (``benchopt`` classes, default
   parameters) against one counted ``ll_grad`` per image on its batch:
   ``step / cost`` is the step's time per unit of counted cost
   (``docs/maths.md`` section 3.2) divided by that time;
3. per-image ``ll_grad`` time against batch size (1, 4, 16, 64) and image
   side (64, 128, 256), grey, 8 filters 5x5: one call on the whole batch,
   and in cache-sized chunks as the loops call it
   (:data:`~benchmark_utils.lower_level.CHUNK_PIXELS`).

Fixed seeds; one thread unless ``--threads``.

Usage::

    OMP_NUM_THREADS=1 python tools/speed.py [--rounds 15] [--device cpu]
        [--tables 1,2,3]
"""

from __future__ import annotations

import argparse
import math
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmark_utils import conv_backend  # noqa: E402
from benchmark_utils.forward import make_forward  # noqa: E402
from benchmark_utils.lower_level import chunked_call, solve_lower_level  # noqa: E402
from benchmark_utils.oracles import CountedOracles  # noqa: E402
from benchmark_utils.regularisers import make_regulariser  # noqa: E402

HOT_CONFIGS = [
    # (batch, channels, size, n_filters, kernel_size)
    (64, 3, 96, 10, 7),
    (16, 1, 64, 48, 7),
    (4, 1, 32, 8, 5),
]
BATCHES = (1, 4, 16, 64)
SIZES = (64, 128, 256)
#: each timed call is repeated until it lasts about this long (seconds)
MIN_CALL = 2e-3


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def interleaved(entries, rounds, device):
    """Time ``entries`` (name -> (fn, n_images)) in interleaved rounds.

    Returns
    -------
    dict
        name -> {"cpu": [...], "wall": [...], "faults": [...]}, per call
        and per image (seconds), faults per call.
    """
    names = list(entries)
    inner = {}
    for name in names:  # warm-up and calibration
        fn = entries[name][0]
        fn()
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        inner[name] = max(1, math.ceil(MIN_CALL / max(time.perf_counter() - t0, 1e-9)))
    res = {n: {"cpu": [], "wall": [], "faults": []} for n in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            fn, n_img = entries[name]
            k = inner[name]
            f0, c0, w0 = _faults(), time.process_time(), time.perf_counter()
            for _ in range(k):
                fn()
            _sync(device)
            w1, c1, f1 = time.perf_counter(), time.process_time(), _faults()
            res[name]["cpu"].append((c1 - c0) / k / n_img)
            res[name]["wall"].append((w1 - w0) / k / n_img)
            res[name]["faults"].append((f1 - f0) / k)
    return res


def _forced(name, fn):
    def call():
        previous = conv_backend.set_backend(name)
        try:
            return fn()
        finally:
            conv_backend.set_backend(previous)

    return call


def _problem(batch, channels, size, n_filters, kernel, device, mu=1e-3):
    gen = torch.Generator().manual_seed(0)
    x_clean = torch.rand(batch, channels, size, size, generator=gen).to(device)
    fwd = make_forward(
        "denoising",
        image_shape=(channels, size, size),
        noise_sigma=25 / 255,
        seed=0,
        device=device,
        dtype=torch.float32,
    )
    y = fwd.measure(x_clean, seed=0)
    reg = make_regulariser("foe", channels, n_filters=n_filters, kernel_size=kernel)
    oracles = CountedOracles(reg, fwd, x_clean, y, mu=mu)
    theta = oracles.init_theta(0).to(device)
    idx = torch.arange(batch, device=device)
    v = torch.randn(y.shape, generator=gen).to(device)
    return oracles, theta, y.clone(), v, idx


def hot_entries(batch, channels, size, n_filters, kernel, device):
    """Entries of table 1 for one configuration."""
    cfg = (batch, channels, size, n_filters, kernel)
    oracles, theta, x, v, idx = _problem(*cfg, device)
    gen = torch.Generator().manual_seed(1)
    filters = torch.randn(n_filters, channels, kernel, kernel, generator=gen).to(device)
    pad = kernel // 2
    flipped = filters.flip(-1, -2).transpose(0, 1).contiguous()
    hess = oracles.hessian(theta, x, idx)
    e = {
        "raw": lambda: F.conv_transpose2d(
            F.conv2d(x, filters, padding=pad), filters, padding=pad
        ),
        "raw_flip": lambda: F.conv2d(
            F.conv2d(x, filters, padding=pad), flipped, padding=pad
        ),
    }
    if device == "cpu" and conv_backend.nnpack_usable():
        nn = torch._nnpack_spatial_convolution
        e["raw_nnpack"] = lambda: nn(
            nn(x, filters, None, [pad, pad]), flipped, None, [pad, pad]
        )
    e["ll_grad"] = lambda: oracles.ll_grad(theta, x, idx)
    e["ll_grad_flip"] = _forced("flip", e["ll_grad"])
    e["hvp"] = lambda: hess(v)
    e["hvp_flip"] = _forced("flip", e["hvp"])
    e["jvp"] = lambda: oracles.jvp(theta, x, v, idx)

    def solve():  # 20 iterations, tolerance never met
        solve_lower_level(oracles, theta, x, idx, 1e-30, max_iter=20, warn=False)

    e["lower_20it"] = solve
    scale = {"lower_20it": 20}
    return {k: (torch.no_grad()(fn), batch * scale.get(k, 1)) for k, fn in e.items()}


def _stat(vals):
    return statistics.median(vals) * 1e3, min(vals) * 1e3


def print_table(title, res, ref="raw"):
    """Print one interleaved table (ms per image; ratios of median CPU time)."""
    print(f"\n{title}")
    print(
        f"{'entry':14s} {'cpu med':>8s} {'cpu min':>8s} {'wall med':>8s} "
        f"{'wall min':>8s} {'cpu/' + ref:>9s} {'faults':>8s}"
    )
    ref_cpu = statistics.median(res[ref]["cpu"]) if ref in res else float("nan")
    for name, r in res.items():
        cm, cmin = _stat(r["cpu"])
        wm, wmin = _stat(r["wall"])
        ratio = statistics.median(r["cpu"]) / ref_cpu
        faults = statistics.median(r["faults"])
        print(
            f"{name:14s} {cm:8.3f} {cmin:8.3f} {wm:8.3f} {wmin:8.3f} "
            f"{ratio:9.2f} {faults:8.0f}"
        )


def isgd_table(rounds):
    """Table 2: ISGD steps on the default problem against its ll_grad."""
    from benchopt.benchmark import Benchmark
    from benchopt.utils.run_context import RunContext

    bench = Benchmark(ROOT)
    dataset = next(d for d in bench.get_datasets() if d.name == "denoising")
    dataset = dataset.get_instance()
    objective = bench.get_benchmark_objective().get_instance()
    solver_cls = next(s for s in bench.get_solvers() if s.name == "ISGD")
    ctx = RunContext(
        base_seed="0",
        dataset_name=str(dataset),
        objective_name=str(objective),
        solver_name="ISGD",
        repetition=0,
    )
    dataset._run_context = objective._run_context = ctx
    objective.set_data(**dataset.get_data())
    solvers = {}
    for backend in ("auto", "flip"):
        solver = solver_cls.get_instance(q=0.0)
        solver._run_context = ctx
        solver.set_objective(**objective.get_objective())
        solver.start()
        solvers[backend] = solver
    oracles = solvers["auto"].oracles
    batch = solvers["auto"].batch_size
    idx = torch.arange(batch)
    x = oracles.initial_x(idx)
    theta = solvers["auto"].theta
    entries, costs = {}, {b: [] for b in solvers}

    def stepper(backend):
        solver = solvers[backend]

        def call():
            previous = conv_backend.set_backend(backend)
            try:
                before = solver.oracles.counters.cost
                solver.step()
                solver.n_outer += 1
                costs[backend].append(solver.oracles.counters.cost - before)
            finally:
                conv_backend.set_backend(previous)

        return call

    entries["isgd_step"] = (stepper("auto"), 1)
    entries["isgd_step_flip"] = (stepper("flip"), 1)
    with torch.no_grad():
        entries["ll_grad"] = (lambda: oracles.ll_grad(theta, x, idx), batch)
        entries["ll_grad_flip"] = (_forced("flip", entries["ll_grad"][0]), batch)
    global MIN_CALL
    saved, MIN_CALL = MIN_CALL, 0.0  # one step per timing
    try:
        res = interleaved(entries, rounds, "cpu")
    finally:
        MIN_CALL = saved
    print("\nISGD on the default problem (denoising 32x32 grey, FoE 8 filters 5x5,")
    print(f"batch {batch}); ms per step, cost = counted ll_grad + hvp per step")
    for backend, step_name, grad_name in (
        ("auto", "isgd_step", "ll_grad"),
        ("flip", "isgd_step_flip", "ll_grad_flip"),
    ):
        steps = res[step_name]["cpu"][: len(costs[backend])]
        cost = costs[backend][-len(steps) :]  # the timed calls
        per_cost = statistics.median(
            s / c for s, c in zip(steps, cost, strict=True) if c
        )
        grad = statistics.median(res[grad_name]["cpu"])
        print(
            f"{backend:5s} step cpu med {statistics.median(steps) * 1e3:7.3f} ms, "
            f"median cost {statistics.median(cost):5.0f}, step/cost "
            f"{per_cost * 1e3:6.3f} ms, ll_grad/image {grad * 1e3:6.3f} ms, "
            f"ratio {per_cost / grad:5.2f}"
        )


def batch_table(rounds, device):
    """Table 3: per-image ll_grad time against batch size and image side,
    one oracle call on the whole batch and chunked as in the loops
    (:func:`~benchmark_utils.lower_level.chunked_call`)."""
    entries = {}
    for size in SIZES:
        for batch in BATCHES:
            oracles, theta, x, _, idx = _problem(batch, 1, size, 8, 5, device)
            buf = torch.empty_like(x)

            def whole(o=oracles, t=theta, x=x, i=idx):
                return o.ll_grad(t, x, i)

            def chunked(o=oracles, t=theta, x=x, i=idx, buf=buf):
                return chunked_call(lambda z, j: o.ll_grad(t, z, j), x, i, lambda: buf)

            entries[f"{size}px b{batch}"] = (torch.no_grad()(whole), batch)
            entries[f"{size}px b{batch} chunked"] = (torch.no_grad()(chunked), batch)
    res = interleaved(entries, rounds, device)
    for title, tail in (("one call", ""), ("chunked", " chunked")):
        print(f"\nll_grad ms per image (median CPU), grey, 8 filters 5x5, {title}")
        print(f"{'side':>5s} " + " ".join(f"{'b' + str(b):>8s}" for b in BATCHES))
        for size in SIZES:
            row = [
                statistics.median(res[f"{size}px b{b}{tail}"]["cpu"]) * 1e3
                for b in BATCHES
            ]
            print(f"{size:5d} " + " ".join(f"{v:8.3f}" for v in row))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tables", default="1,2,3")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tables = {int(t) for t in args.tables.split(",")}
    print(
        f"device={args.device} threads={torch.get_num_threads()} "
        f"torch={torch.__version__} nnpack={conv_backend.nnpack_usable()} "
        f"backend={conv_backend.get_backend()}"
    )
    if 1 in tables:
        for cfg in HOT_CONFIGS:
            res = interleaved(hot_entries(*cfg, args.device), args.rounds, args.device)
            b, c, s, k, ks = cfg
            print_table(f"{b}x{c}x{s}x{s}, {k} filters {ks}x{ks} (ms per image)", res)
    if 2 in tables and args.device == "cpu":
        isgd_table(args.rounds)
    if 3 in tables:
        batch_table(max(3, args.rounds // 3), args.device)


if __name__ == "__main__":
    main()
