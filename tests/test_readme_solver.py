"""README.md's "Adding a solver" example, extracted and run unchanged."""

from benchmark_utils.bilevel_solver import BilevelSolver
from tests.bench_helpers import _context, get_dataset, get_objective, readme_code


def readme_solver():
    namespace = {"__name__": "readme_solver"}
    exec(compile(readme_code("Adding a solver"), "README.md", "exec"), namespace)
    return namespace["Solver"]


def test_readme_solver_runs_counts_and_learns():
    cls = readme_solver()
    assert issubclass(cls, BilevelSolver)
    dataset = get_dataset("denoising", n_train=4, n_test=2, patch_size=16)
    objective = get_objective(n_filters=2, budget=3000, n_checkpoints=3)
    solver = cls.get_instance(**cls.test_config)
    ctx = _context(0, 0, dataset, objective, solver)
    for comp in (dataset, objective, solver):
        comp._run_context = ctx
    objective.set_data(**dataset.get_data())
    solver.set_objective(**objective.get_objective())
    first = objective.evaluate_result(**objective.get_one_result())
    calls = iter(range(10))
    solver.run(lambda: next(calls) < 4)
    last = objective.evaluate_result(**solver.get_result())
    # every step is a full-batch solve + CG, counted per image by the oracles
    assert last["cost"] >= 3000 and last["n_outer"] >= 1
    assert last["ll_grad"] > 0 and last["hvp"] > 0 and last["jvp"] > 0
    assert last["value"] < first["value"], "hypergradient descent lowers the loss"


def test_readme_k_pattern_selects_only_the_example(tmp_path):
    """The ``-k`` pattern the README gives selects the example's benchopt
    tests and no other solver's (``-k GD`` would also select ISGD)."""
    import re
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    pattern = re.search(r'-k "([^"]+)"', readme)[1]
    path = re.search(r"as `(solvers/[a-z_]+\.py)`", readme)[1]
    copy = tmp_path / "bench"
    shutil.copytree(
        root,
        copy,
        ignore=shutil.ignore_patterns(".git", "outputs", "data", "__cache__", ".*"),
    )
    (copy / path).write_text(readme_code("Adding a solver"))
    proc = subprocess.run(
        [sys.executable, "-m", "benchopt", "test", str(copy), "--skip-install"]
        + ["-p", "no:benchmark", "-q", "--collect-only", "-k", pattern],
        capture_output=True,
        text=True,
        check=False,
    )
    ids = re.findall(r"::(\w+\[[^\]]+\])", proc.stdout)
    assert len(ids) >= 4, proc.stdout + proc.stderr
    assert all(re.search(r"\[gd[-\]]", i) for i in ids), ids
