"""Catalogue of bad inputs: every parameter is validated where it enters.

One table per component (datasets, objective, each solver). A row is
``bad(param, value, allowed, gap=None, extra=None)``: building the component
with ``param=value`` (and the other parameters in ``extra``) must raise a
one-line ``ValueError`` whose message names ``param`` and matches the regular
expression ``allowed`` (its allowed range).
Datasets validate in ``get_data``, the objective in ``set_data`` (which
keeps the error; ``get_objective`` raises it, inside benchopt's cell, see
``docs/cli.md``), solvers in ``set_objective``
(``BilevelSolver.check_parameters``), i.e. before any cost is spent.

Rows with ``gap=...`` document inputs that are NOT validated yet (the text
is today's behaviour). They run as strict xfails: when the validation is
added, the row XPASSes, which fails the run until the ``gap`` is removed.

To cover another solver, add its rows to ``SOLVER_CASES`` (values are
passed exactly as ``benchopt run -s "NAME[param=value]"`` would: note that
the CLI turns ``inf``, ``nan`` and any other word into the *string* "inf",
"nan", ...).

What a bad cell does inside a ``benchopt run`` grid (status "error", the
one-line message in the log, the other cells unaffected) is tested in
``test_rel_runs.py`` for a solver and at the end of this file for an
objective (``slow``), with the ``device`` spellings that benchopt's ``-o``
parser accepts.
"""

import os
import re
import subprocess
import sys

import pytest
import torch
from benchopt.benchmark import _list_parametrized_classes

from tests.bench_helpers import (
    ROOT,
    _context,
    benchmark,
    get_dataset,
    get_objective,
    get_solver,
)

SMALL = {"n_train": 4, "n_val": 1, "n_test": 2, "patch_size": 16, "image_size": 32}
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
    bad("n_test", 10**7, r"n_val \+ n_test=.*at most \d+: the source has"),
    bad("n_val", 0, ">= 1"),
    bad("patch_size", 0, ">= 1"),
    bad("patch_size", 5000, "<= image_size = 32"),
    bad("image_size", 5000, r"at most \d+ \('"),
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
    bad("n_filters", 100_000, "<= 1024"),
    bad("kernel_size", 4, "odd integer"),
    bad("kernel_size", 2.5, "integer"),
    bad("kernel_size", 99, "<= 16"),
    bad("mu", -1.0, ">= 0"),
    bad("mu", NAN, ">= 0"),
    bad("mu", INF, "finite"),
    bad("mu", "a", ">= 0"),
    bad("mu", 1e10, r"<= 1 \(\|\|A\|\|\^2 of the denoising operator"),
    bad("mu", 1.5, r"<= 1 \(\|\|A\|\|\^2"),
    bad("budget", 0, ">= 1"),
    bad("budget", -5, ">= 1"),
    bad("budget", INF, "an integer >= 1"),
    bad("budget", "a", ">= 1"),
    bad("budget", 1.5, "an integer >= 1"),
    bad("budget", 250.7, "an integer >= 1"),
    bad("budget", 1e30, r"<= 1e\+09"),
    bad("budget", 10**9 + 1, r"<= 1e\+09"),
    bad("n_checkpoints", 0, ">= 1"),
    bad("n_checkpoints", 2.5, "integer"),
    bad("n_checkpoints", "a", ">= 1"),
    bad("eval_tol", 0.0, ">= 1e-05"),
    bad("eval_tol", NAN, ">= 1e-05"),
    bad("eval_tol", INF, "finite"),
    bad("eval_tol", 1e10, "<= 0.001"),
    bad("eval_tol", 1e-2, "<= 0.001"),
    bad("eval_tol", 1e-8, ">= 1e-05"),
    bad("device", "tpu", "'auto', 'cpu' or 'cuda"),
    bad("device", "cuda:x", "'auto', 'cpu' or 'cuda"),
    bad("device", "cuda0", "'auto', 'cpu' or 'cuda"),
    bad("device", 0, "'auto', 'cpu' or 'cuda"),
]
if torch.cuda.is_available():
    n_gpus = torch.cuda.device_count()
    OBJECTIVE_CASES.append(bad("device", f"cuda:{n_gpus}", "cuda:0 to cuda:"))
    OBJECTIVE_CASES.append(bad("device", f"cuda-{n_gpus}", "cuda:0 to cuda:"))
else:
    for spelling in ("cuda", "cuda:0", "cuda-0"):
        OBJECTIVE_CASES.append(bad("device", spelling, "not available.*'cpu'"))

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
    data = get_dataset(name, **params).get_data()
    assert isinstance(data["setup_error"], ValueError)
    check_message(data["setup_error"], row["param"], row["allowed"])
    # ... and the objective raises it in the cell, before any cost
    objective = get_objective()
    objective.set_data(**data)
    with pytest.raises(ValueError) as err:
        objective.get_objective()
    assert err.value is data["setup_error"]


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


# -- where the objective's errors surface --------------------------------------
def test_objective_error_is_raised_by_get_objective():
    """benchopt's own set-up path: no parameter changed, the error per cell.

    ``_set_dataset`` (run by benchopt while it lists the cells, outside its
    per-cell error handling) must neither raise nor change a parameter
    (benchopt refuses that with "Parameter budget has been changed"); the
    project's message comes from ``get_objective``, inside the cell.
    """
    dataset, _ = small_data()
    objective = get_objective(budget=1.5)
    objective._run_context = _context(0, 0, dataset, objective, None)
    skip, _ = objective._set_dataset(dataset)
    assert not skip and objective.budget == 1.5
    with pytest.raises(ValueError) as err:
        objective.get_objective()
    check_message(err.value, "budget", "an integer >= 1")
    # the same path accepts an integral float from the command line (1e3)
    good = get_objective(budget=1e3, n_checkpoints=3)
    good._run_context = _context(0, 0, dataset, good, None)
    good._set_dataset(dataset)
    assert good.budget == 1e3
    budget = good.get_objective()["budget"]
    assert budget == 1000 and isinstance(budget, int)


# -- device spellings through benchopt's -o parser ------------------------------
def parse_objective(selector):
    """The objective instances benchopt builds for ``-o selector``."""
    filters = benchmark().check_objective_filters([selector])
    found = _list_parametrized_classes(*filters, check_installed=False)
    return [objective for objective, _ in found]


@pytest.mark.parametrize(
    "selector,device,torch_device",
    [
        ("Bilevel imaging[device='cuda:0']", "cuda:0", "cuda:0"),
        ('Bilevel imaging[device="cuda:0"]', "cuda:0", "cuda:0"),
        ("Bilevel imaging[device=cuda-0]", "cuda-0", "cuda:0"),
        ("Bilevel imaging[device=cuda]", "cuda", "cuda"),
    ],
)
def test_device_spellings_parse(selector, device, torch_device):
    (objective,) = parse_objective(selector)
    assert objective.device == device
    if torch.cuda.is_available():
        objective, _ = build(objective_params={"device": objective.device})
        assert str(objective.dev) == torch_device
    else:
        with pytest.raises(ValueError) as err:
            build(objective_params={"device": objective.device})
        check_message(err.value, "device", "not available.*'cpu' or 'auto'")


def test_unquoted_cuda_colon_is_refused_by_benchopt():
    """benchopt 1.10 reads ``device=cuda:0`` as a dict entry ``'cuda': 0``."""
    with pytest.raises(ValueError, match="Invalid name 'device=cuda:0'"):
        parse_objective("Bilevel imaging[device=cuda:0]")


def test_auto_device_falls_back_to_the_cpu():
    (objective,) = parse_objective("Bilevel imaging[device=auto,n_filters=2]")
    dataset, data = small_data()
    objective._run_context = _context(0, 0, dataset, objective, None)
    objective.set_data(**data)
    assert objective.get_objective()["device"].type == (
        "cuda" if torch.cuda.is_available() else "cpu"
    )


# -- a grid with one bad objective (benchopt run) --------------------------------
@pytest.mark.slow
def test_grid_with_a_bad_objective_keeps_the_good_cells(tmp_path):
    import pandas as pd

    obj = "Bilevel imaging[n_filters={},budget=50,n_checkpoints=2]"
    out = tmp_path / "grid.parquet"
    cmd = [sys.executable, "-m", "benchopt", "run", str(ROOT), "--no-plot"]
    cmd += ["--no-cache", "--output", str(out), "-n", "5", "-r", "1"]
    cmd += ["-d", "denoising[n_train=4,n_val=1,n_test=2,patch_size=16,image_size=32]"]
    cmd += ["-o", obj.format(-3), "-o", obj.format(2), "-s", "ISGD[batch_size=2,q=0]"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run(
        cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600
    )
    log = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    assert proc.returncode == 0, log[-3000:]
    assert "parameter n_filters=-3 is invalid; allowed: an integer >= 1" in log
    assert re.search(r"ISGD\[.*\]: error", log)
    df = pd.read_parquet(out)
    assert set(df["p_obj_n_filters"]) == {2}
    assert df["objective_cost"].max() >= 50


@pytest.mark.slow
def test_grid_with_a_bad_dataset_keeps_the_good_cells(tmp_path):
    import pandas as pd

    out = tmp_path / "grid.parquet"
    cmd = [sys.executable, "-m", "benchopt", "run", str(ROOT), "--no-plot"]
    cmd += ["--no-cache", "--output", str(out), "-n", "5", "-r", "1"]
    cmd += [
        "-d",
        "denoising[n_train=4,n_val=1,n_test=2,patch_size=16,image_size=32,noise_level=1e6]",
    ]
    cmd += ["-d", "denoising[n_train=4,n_val=1,n_test=2,patch_size=16,image_size=32]"]
    cmd += ["-o", "Bilevel imaging[n_filters=2,budget=50,n_checkpoints=2]"]
    cmd += ["-s", "ISGD[batch_size=2,q=0]"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run(
        cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600
    )
    log = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    assert proc.returncode == 0, log[-3000:]
    assert "noise_level=1000000.0 is invalid" in log, log[-3000:]
    df = pd.read_parquet(out)
    assert set(df["p_dataset_noise_level"]) == {25.0}
    assert df["objective_cost"].max() >= 50
