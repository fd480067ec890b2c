"""Peak memory of a run on a large training set (``docs/memory.md``).

Builds, as ``benchopt run`` does (benchmark classes, seeds from a run
context), the default denoising problem on ``--n-train`` patches of
``--patch-size`` pixels, then goes through the stages of a run and reports
for each the memory it adds:

1. ``data``: ``Dataset.get_data`` (clean patches and measurements);
2. ``objective``: ``Objective.set_data`` (evaluation oracles, problem);
3. ``solver``: ``Solver.set_objective`` (fresh counted oracles, per-image
   warm starts :class:`~benchmark_utils.memory.ImageMemory`, ``docs/maths.md``
   sections 4-5);
4. ``1 step``: one ISGD outer step (``docs/maths.md`` section 5) on a
   mini-batch of ``--batch-size`` images;
5. ``evaluation`` (only with ``--evaluate``; slow on a CPU): one
   ``Objective.evaluate_result`` (accurate lower-level solves of every
   training and test image, chunks of 64, its own warm starts).

Memory is measured three ways: the bytes of the tensors each stage keeps
(exact, counted once per storage, read without allocating: the adjoint warm
starts q_i exist only once a stage has used them), the process's resident
set size (RSS,
``/proc/self/status``) after the stage, and its peak RSS during the stage
(the high-water mark is reset before each stage through
``/proc/self/clear_refs`` on Linux; elsewhere ``getrusage`` gives the
process-wide peak). On CUDA, ``torch.cuda.memory_allocated`` and
``max_memory_allocated`` (peak reset per stage) are reported as well.
The script prints a markdown table (the one in ``docs/memory.md``).

Usage::

    python tools/memory.py [--n-train 1000] [--patch-size 64]
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

    def markdown(self, n_images):
        """The rows as a markdown table; kept tensors also per training image."""
        heads = ["stage", "time [s]", "kept tensors [MiB]", "per image [KiB]"]
        heads += ["+RSS after [MiB]", "+peak RSS [MiB]"]
        if self.cuda:
            heads += ["+CUDA alloc [MiB]", "+CUDA peak [MiB]"]
        lines = [
            "| " + " | ".join(heads) + " |",
            "|---" + "|---:" * (len(heads) - 1) + "|",
        ]
        for row in self.rows:
            cells = [row["stage"], f"{row['seconds']:.2f}", f"{row['tensors']:.1f}"]
            cells.append(f"{row['tensors'] * MIB / n_images / 1024:.1f}")
            cells += [f"{row['rss']:.1f}", f"{row['peak']:.1f}"]
            if self.cuda:
                cells += [f"{row['cuda']:.1f}", f"{row['cuda_peak']:.1f}"]
            lines.append("| " + " | ".join(cells) + " |")
        if not self.can_reset:
            lines.append("(peak RSS: process-wide high-water mark, not per stage)")
        return "\n".join(lines)


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
    if args.device.startswith("cuda") or (
        args.device == "auto" and torch.cuda.is_available()
    ):
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
        ours += [o._aty for o in obj.evaluation.oracles.values()]
        return tensor_mib(*data_storages, *ours) - tensor_mib(*data_storages)

    meter("objective", set_data, objective_new)

    def set_objective():
        solver.set_objective(**objective.get_objective())
        solver.start()
        return solver

    def solver_state(s):
        """Tensors of the solver's run state (warm starts, oracles, theta)."""
        ours = [*s.memory.tensors(), s.oracles._aty, s.theta]
        return ours + list(s.oracles.counters.per_image.values())

    known = data_storages + [objective.x_train, objective.y_train]
    known += [o._aty for o in objective.evaluation.oracles.values()]

    def solver_new(s):
        return tensor_mib(*known, *solver_state(s)) - tensor_mib(*known)

    meter("solver", set_objective, solver_new)
    state_before = (id(solver.memory), id(solver.oracles))
    mib_before = solver_new(solver)

    def one_step():
        calls = iter([True, False])
        solver.run(lambda: next(calls))
        return solver

    # run() drops the solver's state and builds it again (same size): the
    # step keeps what its state grew by (q_i once the adjoint solves ran)
    meter("1 step", one_step, lambda s: solver_new(s) - mib_before)
    assert solver.n_outer == 1, solver.n_outer
    cost = solver.oracles.counters.cost
    rebuilt = (id(solver.memory), id(solver.oracles)) != state_before
    memory_mib = tensor_mib(*solver.memory.tensors())

    if args.evaluate:

        def evaluate():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return objective.evaluate_result(**solver.get_result())

        def eval_new(_):
            mems = [
                t for m in objective.evaluation.memory.values() for t in m.tensors()
            ]
            return tensor_mib(*mems)

        meter("evaluation", evaluate, eval_new)

    x = data["x_train"]
    image_kib = x[0].numel() * x.element_size() / 1024
    unit = x.numel() * x.element_size() / MIB
    print(
        f"{args.task}: {args.n_train} training patches of {tuple(x.shape[1:])}, "
        f"{x.dtype}, device {device}, torch threads {torch.get_num_threads()}; "
        f"U = n_train x C x H x W x {x.element_size()} bytes = {unit:.2f} MiB "
        f"({image_kib:.0f} KiB per image)"
    )
    print(f"RSS after imports and benchmark loading: {base:.1f} MiB")
    print()
    print(meter.markdown(args.n_train))
    print()
    total = sum(row["tensors"] for row in meter.rows)
    print(
        f"kept in all: {total:.1f} MiB = {total / unit:.2f} U = "
        f"{total * MIB / args.n_train / 1024:.1f} KiB per training image"
    )
    print(
        f"solver ImageMemory after the step: {memory_mib:.2f} MiB "
        f"({memory_mib / unit:.2f} U: x_i and q_i)"
    )
    print(
        f"one ISGD step (batch {args.batch_size}) spent cost {cost} "
        f"(lower-level gradients + HVPs, per image)"
        + ("; run() rebuilt the solver's state first" if rebuilt else "")
    )


if __name__ == "__main__":
    main()
