"""Catalogue of bad inputs: every parameter is validated where it enters.

One table per component (datasets, objective, each solver). A row is
``bad(param, value, allowed, gap=None, extra=None)``: building the component
with ``param=value`` (and the other parameters in ``extra``) must raise a
one-line ``ValueError`` whose message names ``param`` and matches the regular
expression ``allowed`` (its allowed range).
Datasets validate in ``get_data``, the objective in ``set_data``, solvers in
``set_objective`` (``BilevelSolver.check_parameters``), i.e. before any cost
is spent.

Rows with ``gap=...`` document inputs that are NOT validated yet (the text
is today's behaviour). They run as strict xfails: when the validation is
added, the row XPASSes, which fails the run until the ``gap`` is removed.

To cover another solver, add its rows to ``SOLVER_CASES`` (values are
passed exactly as ``benchopt run -s "NAME[param=value]"`` would: note that
the CLI turns ``inf``, ``nan`` and any other word into the *string* "inf",
"nan", ...).

What a bad cell does inside a ``benchopt run`` grid (status "error", the
one-line message in the log, the other cells unaffected) is tested in
``test_rel_runs.py``.
"""

import re

import pytest
import torch

from tests.bench_helpers import _context, get_dataset, get_objective, get_solver

SMALL = {"n_train": 4, "n_test": 2, "patch_size": 16}
INF, NAN = float("inf"), float("nan")


def bad(param, value, allowed, gap=None, extra=None):
    """One row of a table (see module docstring)."""
    return {
        "param": param,
        "value": value,
        "allowed": allowed,
        "gap": gap,
        "extra": extra or {},
    }


# -- datasets ---------------------------------------------------------------
COMMON_DATASET_CASES = [
    bad("source", "nope", "one of 'skimage'"),
    bad("source", 3, "one of 'skimage'"),
    bad("folder", None, "directory path", extra={"source": "folder"}),
    bad("folder", "/nonexistent/dir", "does not exist", extra={"source": "folder"}),
    bad("folder", "/tmp", "source='folder'"),
    bad("download", "yes", "True or False"),
    bad("n_train", 0, ">= 1"),
    bad("n_train", 2.5, "integer >= 1"),
    bad("n_train", 10**7, r"exceeds the \d+ distinct"),
    bad("n_test", 0, ">= 1"),
    bad("n_test", 10**7, r"exceeds the \d+ distinct"),
    bad("patch_size", 0, ">= 1"),
    bad("patch_size", 5000, "smaller than"),
    bad("grayscale", "no", "True or False"),
    bad("noise_level", -1.0, ">= 0"),
    bad("noise_level", NAN, ">= 0"),
    bad("noise_level", INF, "finite"),
    bad("noise_level", "abc", ">= 0"),
]
DATASET_CASES = {
    "denoising": COMMON_DATASET_CASES,
    "deblurring": COMMON_DATASET_CASES
    + [
        bad("kernel_size", 4, "odd integer >= 1"),
        bad("kernel_size", 0, ">= 1"),
        bad("kernel_size", 99, r"<= min\(H, W\)"),
        bad("kernel_size", "a", "integer"),
        bad("blur_sigma", 0.0, "> 0"),
        bad("blur_sigma", -1.0, "> 0"),
        bad("blur_sigma", INF, "finite"),
    ],
}

# -- objective ("Bilevel imaging") -------------------------------------------
OBJECTIVE_CASES = [
    bad("regulariser", "nope", "one of 'crr'|one of 'foe'"),
    bad("n_filters", 0, ">= 1"),
    bad("n_filters", 2.5, "integer"),
    bad("n_filters", "a", "integer >= 1"),
    bad("kernel_size", 4, "odd integer"),
    bad("kernel_size", 2.5, "integer"),
    bad("kernel_size", 99, "<= 16"),
    bad("mu", -1.0, ">= 0"),
    bad("mu", NAN, ">= 0"),
    bad("mu", INF, "finite"),
    bad("mu", "a", ">= 0"),
    bad("budget", 0, ">= 1"),
    bad("budget", -5, ">= 1"),
    bad("budget", INF, "finite"),
    bad("budget", "a", ">= 1"),
    bad("n_checkpoints", 0, ">= 1"),
    bad("n_checkpoints", 2.5, "integer"),
    bad("n_checkpoints", "a", ">= 1"),
    bad("eval_tol", 0.0, "> 0"),
    bad("eval_tol", NAN, "> 0"),
    bad("eval_tol", INF, "finite"),
    bad("device", "tpu", "'auto', 'cpu' or 'cuda"),
]
if not torch.cuda.is_available():
    OBJECTIVE_CASES.append(bad("device", "cuda", "not available"))

# -- solvers ------------------------------------------------------------------
SOLVER_CASES = {
    "ISGD": [
        bad("step_size", -1.0, "> 0"),
        bad("step_size", 0.0, "> 0"),
        bad("step_size", NAN, "> 0"),
        bad("step_size", INF, "finite"),
        bad("step_size", "inf", "> 0"),
        bad("q", -1.0, ">= 0"),
        bad("q", NAN, ">= 0"),
        bad("p", -0.5, ">= 0"),
        bad("eps0", 0.0, "> 0"),
        bad("eps0", -1.0, "> 0"),
        bad("eps0", INF, "finite"),
        bad("eps0", "a", "> 0"),
        bad("delta_ratio", 0.0, "> 0"),
        bad("delta_ratio", "a", "> 0"),
        bad("schedule", "cosine", "one of 'poly', 'log'"),
        bad("schedule", 3, "one of 'poly', 'log'"),
        bad("optimizer", "lbfgs", "one of 'sgd', 'adam'"),
        bad("optimizer", None, "one of 'sgd', 'adam'"),
        bad("batch_size", 0, ">= 1 and <= 4"),
        bad("batch_size", 5, ">= 1 and <= 4"),
        bad("batch_size", 2.5, "integer"),
        bad("batch_size", True, "integer"),
        bad("batch_size", "2", "integer"),
    ],
}


def _params(table):
    """pytest params (with ids and strict xfail marks) from a table."""
    out = []
    for key, rows in table.items():
        for row in rows:
            marks = []
            if row["gap"]:
                marks.append(pytest.mark.xfail(strict=True, reason=row["gap"]))
            ident = f"{key}-{row['param']}={row['value']!r}"
            out.append(pytest.param(key, row, marks=marks, id=ident))
    return out


def check_message(err, param, allowed):
    """One line, names the parameter, states the allowed range."""
    msg = str(err)
    assert "\n" not in msg.strip(), f"multi-line message: {msg!r}"
    assert re.search(rf"\b{re.escape(param)}\b", msg), f"{param!r} not in {msg!r}"
    assert re.search(allowed, msg), f"allowed range {allowed!r} not in {msg!r}"


_DATA = {}


def small_data():
    """The small denoising data (built once; objective/solver cases reuse it)."""
    if "data" not in _DATA:
        dataset = get_dataset("denoising", **SMALL)
        _DATA["dataset"] = dataset
        _DATA["data"] = dataset.get_data()
    return _DATA["dataset"], _DATA["data"]


def build(objective_params=None, solver_name="ISGD", solver_params=None):
    """Objective and solver set up on the small data, as a benchopt run does."""
    dataset, data = small_data()
    objective = get_objective(**(objective_params or {}))
    solver = get_solver(solver_name, **(solver_params or {}))
    ctx = _context(0, 0, dataset, objective, solver)
    objective._run_context = solver._run_context = ctx
    objective.set_data(**data)
    solver.set_objective(**objective.get_objective())
    return objective, solver


@pytest.mark.parametrize("name,row", _params(DATASET_CASES))
def test_bad_dataset_parameter(name, row):
    params = {**SMALL, **row["extra"], row["param"]: row["value"]}
    dataset = get_dataset(name, **params)
    with pytest.raises(ValueError) as err:
        dataset.get_data()
    check_message(err.value, row["param"], row["allowed"])


@pytest.mark.parametrize("name,row", _params({"objective": OBJECTIVE_CASES}))
def test_bad_objective_parameter(name, row):
    with pytest.raises(ValueError) as err:
        build(objective_params={**row["extra"], row["param"]: row["value"]})
    check_message(err.value, row["param"], row["allowed"])


@pytest.mark.parametrize("name,row", _params(SOLVER_CASES))
def test_bad_solver_parameter(name, row):
    with pytest.raises(ValueError) as err:
        params = {**row["extra"], row["param"]: row["value"]}
        build(solver_name=name, solver_params=params)
    check_message(err.value, row["param"], row["allowed"])
    assert str(err.value).startswith(f"{name}:"), "the message names the solver"


def test_good_defaults_build():
    """The tables test something: the same builders accept valid input."""
    objective, solver = build(solver_params={"batch_size": 2})
    assert solver.problem.n_images == SMALL["n_train"]
    assert objective.budget > 0
