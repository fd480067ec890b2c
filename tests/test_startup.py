"""Start-up cost of a solver process (docs/speed.md, "Start-up").

benchopt imports the objective, dataset, solver and plot modules of the
benchmark before it runs a cell (and every ``-j`` worker imports them
again). None of them may import a heavy package that the process does not
need: deepinv, torchvision and scikit-image are imported only where an
operator is built or images are loaded, and matplotlib only by benchopt
itself (``benchopt.plotting``), never by the benchmark. Checked in a fresh
interpreter, against what ``import benchopt`` alone imports.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from bench_helpers import load_script

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("deepinv", "torchvision", "skimage", "matplotlib", "scipy", "sklearn")
MODULES = [
    "objective",
    "datasets.denoising",
    "datasets.deblurring",
    "datasets.inpainting",
    "plots.cost_curve",
    "plots.reconstructions",
    "plots.filters",
] + [f"solvers.{path.stem}" for path in sorted((ROOT / "solvers").glob("*.py"))]


#: imports benchopt, then each module in turn, printing the heavy packages
#: loaded so far after each step
SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[1])
heavy = set(sys.argv[2].split(","))
def loaded():
    return sorted({m.split(".")[0] for m in sys.modules} & heavy)
import benchopt
steps = [["benchopt", loaded()]]
for name in sys.argv[3:]:
    __import__(name)
    steps.append([name, loaded()])
print(json.dumps(steps))
"""


@pytest.fixture(scope="module")
def steps():
    """(module, heavy packages loaded after importing it), in import order."""
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(ROOT), ",".join(HEAVY), *MODULES],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_benchopt_alone_imports_matplotlib(steps):
    """What the benchmark cannot avoid: benchopt's own plotting imports."""
    assert steps[0][0] == "benchopt"
    assert "deepinv" not in steps[0][1]


def test_benchmark_modules_import_no_heavy_package(steps):
    base = set(steps[0][1])
    for name, heavy in steps[1:]:
        extra = set(heavy) - base
        assert not extra, f"importing {name} imports {sorted(extra)}"
    assert [name for name, _ in steps[1:]] == MODULES


def test_benchmark_modules_list_is_complete():
    """A new solver file is covered (the list is built from solvers/)."""
    assert len([m for m in MODULES if m.startswith("solvers.")]) >= 8


# -- tools/run_times.py -----------------------------------------------------
def _run_times():
    return load_script("run_times", "tools")


def _cell(task, solver, seconds, status="budget", eval_seconds=1.0):
    return dict(
        task=task,
        solver=solver,
        rep=0,
        seconds=seconds,
        eval_seconds=eval_seconds,
        status=status,
    )


def test_run_times_goals_and_timeouts():
    rt = _run_times()
    cells = [
        _cell("denoising", "ISGD[batch_size=4,q=0.5,step_size=100.0]", 4.0),
        _cell("inpainting", "AmIGO[batch_size=4]", 19.0, eval_seconds=3.0),
    ]
    res = rt.summary("default", cells, wall=250.0)
    assert res["ok"] and res["slowest"]["solver"].startswith("AmIGO")
    assert res["share"] == pytest.approx(4.0 / 23.0)
    assert rt.short(cells[0]["solver"]) == "ISGD q=0.5"
    # a cell over 20 s, a timeout, a run over 300 s: each fails the goals
    assert not rt.summary("default", [*cells, _cell("d", "BSA", 21.0)], 250.0)["ok"]
    timed_out = _cell("d", "SOBA", 5.0, status="timeout")
    res = rt.summary("default", [*cells, timed_out], 250.0)
    assert not res["ok"] and res["timeouts"] == [timed_out]
    assert not rt.summary("default", cells, wall=301.0)["ok"]
    # quick has no per-cell goal, 60 s for the run
    assert rt.summary("quick", [_cell("d", "BSA", 30.0)], wall=59.0)["ok"]
    assert not rt.summary("quick", [_cell("d", "BSA", 3.0)], wall=61.0)["ok"]


def test_run_times_rewrites_only_its_docs_block(tmp_path):
    rt = _run_times()
    start, end = rt.markers(rt.BLOCK)
    readme = tmp_path / "speed.md"
    readme.write_text(
        f"intro\n{start}\nold text\n- `benchopt run . --config configs/quick.yml`:"
        f" 50 s wall\n{end}\nrest\n",
        encoding="utf-8",
    )
    res = rt.summary("default", [_cell("denoising", "MAID", 3.0)], wall=200.0)
    rt.write_docs([res], readme)
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("intro\n") and text.endswith(f"{end}\nrest\n")
    assert "old text" not in text
    assert "- `benchopt run .`: 200 s wall for 1 cells" in text
    assert "no cell timed out" in text
    assert "configs/quick.yml`: 50 s wall" in text  # the run not measured stays
    unmarked = tmp_path / "unmarked.md"
    unmarked.write_text("no block\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="run-times"):
        rt.write_docs([res], unmarked)
