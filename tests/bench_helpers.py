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


def tiny_bilevel(n_images=4, size=12, seed=0, task="denoising", mu=0.0, **physics):
    """A float64 BilevelProblem on smooth random images, and theta0.

    ``task`` and ``physics`` (e.g. ``mask_ratio``, ``noise_sigma``) choose the
    operator; ``mu`` the ridge weight (> 0 for deblurring and inpainting).
    """
    import torch

    from benchmark_utils.forward import make_forward
    from benchmark_utils.problem import BilevelProblem
    from benchmark_utils.regularisers import make_regulariser

    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n_images, 1, size // 4, size // 4, generator=gen)
    x_clean = torch.nn.functional.interpolate(
        coarse.double(), size=(size, size), mode="bilinear", align_corners=False
    )
    fwd = make_forward(
        task,
        image_shape=(1, size, size),
        n_images=n_images,
        seed=seed,
        dtype=torch.float64,
        **{"noise_sigma": 0.1, **physics},
    )
    y = fwd.measure(x_clean, seed=seed)
    # a stronger start than the default (which does no harm, so leaves
    # little to learn in a short run): descent tests need room to descend
    # ("valid", "dct"): the FoE these solver tests were designed on
    reg = make_regulariser(
        "foe",
        1,
        n_filters=3,
        kernel_size=3,
        boundary="valid",
        init="dct",
        init_weight=0.1,
        init_smoothing=0.05,
    )
    problem = BilevelProblem(reg, fwd, x_clean, y, mu=mu)
    return problem, problem.init_theta(seed)


def solver_on_problem(name, problem, theta0, budget=10**9, seed=3, **params):
    """Solver ``name`` on a hand-made problem, ready for ``step()``.

    Parameters not given take the first value of the solver's grid; the
    seed replaces benchopt's ``get_seed``.
    """
    cls = next(s for s in benchmark().get_solvers() if s.name == name)
    solver = cls()
    for key, values in cls.parameters.items():
        setattr(solver, key, values[0])
    for key, value in params.items():
        setattr(solver, key, value)
    solver.get_seed = lambda **kw: seed
    solver.set_objective(
        problem=problem,
        theta0=theta0,
        budget=budget,
        checkpoints=[budget],
        device="cpu",
    )
    solver.start()
    return solver


def assert_refused(name, problem, theta0, **bad):
    """Solver ``name`` with the one parameter ``bad`` raises a ValueError naming it."""
    import pytest

    ((key, value),) = bad.items()
    with pytest.raises(ValueError, match=f"{key}={value!r}"):
        solver_on_problem(name, problem, theta0, **bad)


def readme_code(section):
    """Source of the first python block of README.md's ``## <section>``."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return body.split("```python\n", 1)[1].split("\n```", 1)[0]


def load_script(name, folder="scripts"):
    """The module ``<folder>/<name>.py`` (``scripts`` or ``tools``), from its file."""
    import importlib.util
    import sys

    if str(ROOT / "tools") not in sys.path:
        sys.path.append(str(ROOT / "tools"))  # the tools' shared helpers
    spec = importlib.util.spec_from_file_location(name, ROOT / folder / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
