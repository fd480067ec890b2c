"""Peak memory of a run on a large training set (README "Running large studies").

Builds, as ``benchopt run`` does (benchmark classes, seeds from a run
context), the default denoising problem on ``--n-train`` patches of
``--patch-size`` pixels, then goes through the stages of a run and reports
for each the memory it adds:

1. ``data``: ``Dataset.get_data`` (clean patches and measurements);
2. ``objective``: ``Objective.set_data`` (evaluation oracles, problem);
3. ``solver``: ``Solver.set_objective`` (fresh counted oracles, per-image
   warm starts :class:`~benchmark_utils.memory.ImageMemory`, ``ALGORITHMS.md``
   sections 4-5);
4. ``1 step``: one ISGD outer step (``ALGORITHMS.md`` section 5) on a
   mini-batch of ``--batch-size`` images;
5. ``evaluation`` (only with ``--evaluate``; slow on a CPU): one
   ``Objective.evaluate_result`` (accurate lower-level solves of every
   training and test image, chunks of 64, its own warm starts).

Memory is measured three ways: the bytes of the tensors each stage keeps
(exact, counted once per storage), the process's resident set size (RSS,
``/proc/self/status``) after the stage, and its peak RSS during the stage
(the high-water mark is reset before each stage through
``/proc/self/clear_refs`` on Linux; elsewhere ``getrusage`` gives the
process-wide peak). On CUDA, ``torch.cuda.memory_allocated`` and
``max_memory_allocated`` (peak reset per stage) are reported as well.

Usage::

    python scripts/memory.py [--n-train 1000] [--patch-size 64]
        [--batch-size 4] [--task denoising] [--device auto] [--evaluate]
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchopt.benchmark import Benchmark  # noqa: E402
from benchopt.utils.run_context import RunContext  # noqa: E402

MIB = 2.0**20


def _status_kib(field):
    """A ``VmRSS``/``VmHWM``-style field of /proc/self/status, in KiB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_mib():
    kib = _status_kib("VmRSS")
    return None if kib is None else kib / 1024


def reset_peak():
    """Reset the peak-RSS mark; False where the OS does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_mib():
    kib = _status_kib("VmHWM")
    if kib is None:  # not Linux: process-wide peak (macOS reports bytes)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / MIB if sys.platform == "darwin" else peak / 1024
    return kib / 1024


def tensor_mib(*tensors):
    """Bytes held by distinct storages among ``tensors`` (None ignored)."""
    seen, total = set(), 0
    for t in tensors:
        if t is None:
            continue
        storage = t.untyped_storage()
        key = (storage.data_ptr(), t.device)
        if key not in seen:
            seen.add(key)
            total += storage.nbytes()
    return total / MIB


class Meter:
    """Measures each stage of the run (see module docstring)."""

    def __init__(self, device):
        self.cuda = device.type == "cuda"
        self.rows = []
        self.can_reset = reset_peak()

    def __call__(self, name, fn, kept=lambda result: 0.0):
        gc.collect()
        before = rss_mib()
        reset_peak()
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            cuda_before = torch.cuda.memory_allocated() / MIB
        t0 = time.perf_counter()
        result = fn()
        if self.cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        gc.collect()
        row = {
            "stage": name,
            "seconds": seconds,
            "tensors": kept(result),
            "rss": rss_mib() - before,
            "peak": peak_mib() - before,
            "rss_total": rss_mib(),
        }
        if self.cuda:
            row["cuda"] = torch.cuda.memory_allocated() / MIB - cuda_before
            row["cuda_peak"] = torch.cuda.max_memory_allocated() / MIB - cuda_before
        self.rows.append(row)
        return result

    def report(self):
        cols = ["stage", "seconds", "tensors", "rss", "peak", "rss_total"]
        if self.cuda:
            cols += ["cuda", "cuda_peak"]
        heads = {
            "stage": "stage",
            "seconds": "time [s]",
            "tensors": "kept tensors",
            "rss": "+RSS after",
            "peak": "+peak RSS",
            "rss_total": "RSS total",
            "cuda": "+CUDA alloc",
            "cuda_peak": "+CUDA peak",
        }
        print(" | ".join(f"{heads[c]:>12}" for c in cols) + "   (MiB)")
        for row in self.rows:
            cells = [f"{row['stage']:>12}", f"{row['seconds']:12.2f}"]
            cells += [f"{row[c]:12.1f}" for c in cols[2:]]
            print(" | ".join(cells))
        if not self.can_reset:
            print("(peak RSS: process-wide high-water mark, not per stage)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-train", type=int, default=1000)
    parser.add_argument("--n-test", type=int, default=8)
    parser.add_argument("--patch-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--task", default="denoising")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--evaluate", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    bench = Benchmark(ROOT)
    (dataset_cls,) = [d for d in bench.get_datasets() if d.name == args.task]
    (solver_cls,) = [s for s in bench.get_solvers() if s.name == "ISGD"]
    objective_cls = bench.get_benchmark_objective()
    dataset = dataset_cls.get_instance(
        n_train=args.n_train, n_test=args.n_test, patch_size=args.patch_size
    )
    # budget 50 -> cost checkpoints [1, 50]: the first callback runs one step
    objective = objective_cls.get_instance(
        budget=50, n_checkpoints=2, device=args.device
    )
    solver = solver_cls.get_instance(batch_size=args.batch_size, q=0.0)
    ctx = RunContext(
        base_seed="0",
        dataset_name=str(dataset),
        objective_name=str(objective),
        solver_name=str(solver),
        repetition=0,
    )
    for comp in (dataset, objective, solver):
        comp._run_context = ctx

    device = torch.device("cpu")
    if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()):
        device = torch.device("cuda")
    meter = Meter(device)
    base = rss_mib()

    data = meter(
        "data",
        dataset.get_data,
        lambda d: tensor_mib(d["x_train"], d["y_train"], d["x_test"], d["y_test"]),
    )

    def set_data():
        objective.set_data(**data)
        return objective

    # on the CPU set_data keeps the dataset's tensors: count only new storages
    data_storages = [data[k] for k in ("x_train", "y_train", "x_test", "y_test")]

    def objective_new(obj):
        ours = [obj.x_train, obj.y_train, obj.x_test, obj.y_test]
        ours += [o._aty for o in obj._eval.values()]
        return tensor_mib(*data_storages, *ours) - tensor_mib(*data_storages)

    meter("objective", set_data, objective_new)

    def set_objective():
        solver.set_objective(**objective.get_objective())
        return solver

    def solver_new(s):
        known = data_storages + [objective.x_train, objective.y_train]
        known += [o._aty for o in objective._eval.values()]
        ours = [s.memory.x, s.memory.q, s.oracles._aty, s.theta]
        ours += list(s.oracles.counters.per_image.values())
        return tensor_mib(*known, *ours) - tensor_mib(*known)

    meter("solver", set_objective, solver_new)
    memory_mib = tensor_mib(solver.memory.x, solver.memory.q)

    def one_step():
        calls = iter([True, False])
        solver.run(lambda: next(calls))
        return solver

    state_before = (id(solver.memory), id(solver.oracles))
    meter("1 step", one_step)
    assert solver.n_outer == 1, solver.n_outer
    cost = solver.oracles.counters.cost
    rebuilt = (id(solver.memory), id(solver.oracles)) != state_before
    rebuilt_mib = tensor_mib(solver.memory.x, solver.memory.q, solver.oracles._aty)

    if args.evaluate:

        def evaluate():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return objective.evaluate_result(**solver.get_result())

        def eval_new(_):
            mems = [m.x for m in objective._memory.values()]
            mems += [m.q for m in objective._memory.values()]
            return tensor_mib(*mems)

        meter("evaluation", evaluate, eval_new)

    x = data["x_train"]
    per_image = 2 * x[0].numel() * x.element_size()
    print(
        f"{args.task}: {args.n_train} training patches of {tuple(x.shape[1:])}, "
        f"{x.dtype}, device {device}, torch threads {torch.get_num_threads()}"
    )
    print(f"RSS after imports and benchmark loading: {base:.1f} MiB")
    meter.report()
    print(
        f"ImageMemory (x_i and q_i per training image): {memory_mib:.2f} MiB = "
        f"{per_image / 1024:.1f} KiB per image (2 C H W x {x.element_size()} bytes)"
    )
    print(
        f"one ISGD step (batch {args.batch_size}) spent cost {cost} "
        f"(lower-level gradients + HVPs, per image)"
    )
    if rebuilt:
        print(
            "'1 step' includes BilevelSolver.run() rebuilding the oracles and "
            f"the ImageMemory ({rebuilt_mib:.1f} MiB of tensors); the old ones "
            "are dropped first, but the allocator may keep their pages"
        )
    unit = x.numel() * x.element_size() / MIB
    print(
        f"U = n_train x C x H x W x {x.element_size()} bytes = {unit:.2f} MiB; "
        "grows with n_train: data x_i, y_i (2U), solver warm starts x_i, q_i "
        "(2U), A^T y per CountedOracles (1U each: solver, objective's train "
        "evaluation), objective's evaluation warm starts x_i (1U, after the "
        "first evaluation; q_i is allocated only when used)"
    )


if __name__ == "__main__":
    main()
