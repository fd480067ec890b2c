"""Drive the benchmark's own classes from tests, as benchopt's runner does.

Classes come from ``benchopt.benchmark.Benchmark`` (never from importing the
files by hand) and instances from ``get_instance``; a ``RunContext`` gives
them the seeds a real run would.
"""

from pathlib import Path

from benchopt.benchmark import Benchmark
from benchopt.utils.run_context import RunContext

ROOT = Path(__file__).resolve().parents[1]
_BENCH = None


def benchmark():
    """The benchmark object (loaded once per test session)."""
    global _BENCH
    if _BENCH is None:
        _BENCH = Benchmark(ROOT)
    return _BENCH


def _context(seed, repetition, dataset, objective, solver):
    return RunContext(
        base_seed=str(seed),
        dataset_name=str(dataset) if dataset is not None else None,
        objective_name=str(objective) if objective is not None else None,
        solver_name=str(solver) if solver is not None else None,
        repetition=repetition,
    )


def get_dataset(name, seed=0, **params):
    """Dataset instance ``name`` with ``params``, ready for ``get_data``."""
    cls = next(d for d in benchmark().get_datasets() if d.name == name)
    dataset = cls.get_instance(**params)
    dataset._run_context = _context(seed, None, dataset, None, None)
    return dataset


def get_objective(**params):
    """Objective instance with ``params``."""
    return benchmark().get_benchmark_objective().get_instance(**params)


def get_solver(name, **params):
    """Solver instance ``name`` with ``params``."""
    cls = next(s for s in benchmark().get_solvers() if s.name == name)
    return cls.get_instance(**params)


def setup_run(
    solver_name,
    solver_params=None,
    dataset_name="denoising",
    dataset_params=None,
    objective_params=None,
    seed=0,
    repetition=0,
):
    """Objective and solver set up as for one benchopt run.

    Returns
    -------
    objective, solver
        ``solver.run(callback)`` and ``objective.evaluate_result`` work.
    """
    dataset = get_dataset(dataset_name, seed=seed, **(dataset_params or {}))
    objective = get_objective(**(objective_params or {}))
    solver = get_solver(solver_name, **(solver_params or {}))
    ctx = _context(seed, repetition, dataset, objective, solver)
    for comp in (dataset, objective, solver):
        comp._run_context = ctx
    objective.set_data(**dataset.get_data())
    solver.set_objective(**objective.get_objective())
    return objective, solver


def run_for(solver, n_callbacks):
    """Run ``solver`` through ``n_callbacks`` callback calls (cost checkpoints)."""
    calls = {"n": 0}

    def callback():
        calls["n"] += 1
        return calls["n"] <= n_callbacks

    solver.run(callback)
    return solver.get_result()
