"""Start-up cost of a solver process (issue 13, README "Run times").

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
