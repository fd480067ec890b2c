"""Resume: an interrupted ``benchopt run`` reuses benchopt's cache.

benchopt caches every finished (dataset, objective, solver, repetition) cell
with joblib in ``<benchmark>/__cache__/benchopt/runner/run_one_to_cvg/<hash>/``
(``output.pkl`` + ``metadata.json``, written when the cell ends; failed and
interrupted cells are not cached). When a run is restarted with the same
command, ``parallel_run`` checks each cell with ``check_call_in_cache``, loads
the finished ones from disk instead of running them, and prints their status
with the suffix ``(cached)``.

The test works on a temporary copy of the benchmark (so the repository's
cache is untouched) with one extra solver written for the test: ``RelProbe``
logs each start to a file and sleeps ``REL_PROBE_SLEEP`` seconds. The run
``ISGD`` then ``RelProbe`` is killed (SIGKILL, like a pre-empted node) while
RelProbe sleeps, right after ISGD's cell reached the cache. The restart must
load ISGD from the cache (status "(cached)", cache file untouched) and run
only RelProbe.
"""

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.bench_helpers import ROOT
from tests.test_rel_runs import DATA, cli_run

PROBE = '''"""Test-only solver: logs its starts, sleeps REL_PROBE_SLEEP seconds."""

import os
import time

import torch

from benchmark_utils.bilevel_solver import BilevelSolver


class Solver(BilevelSolver):
    name = "RelProbe"
    parameters = {"tag": ["probe"]}

    def init_state(self):
        with open(os.environ["REL_PROBE_LOG"], "a") as f:
            f.write("start\\n")
        time.sleep(float(os.environ.get("REL_PROBE_SLEEP", "0")))

    def step(self):
        idx = torch.arange(self.problem.n_images, device=self.device)
        x = self.memory.get_x(idx)
        g = self.oracles.ll_grad(self.theta, x, idx)
        self.memory.set_x(idx, x - g / self.oracles.lipschitz(self.theta))
'''

ARGS = [
    "-d",
    DATA,
    "-o",
    "Bilevel imaging[budget=600,n_checkpoints=3,n_filters=2]",
    "-s",
    "ISGD[batch_size=2,q=0]",
    "-s",
    "RelProbe",
    "-n",
    "10",
    "--seed",
    "1",
    "--timeout",
    "10m",
]


def copy_benchmark(dest):
    """The benchmark files a run needs (no cache, outputs or other solvers)."""
    for name in ("objective.py", "config.yml"):
        shutil.copy(ROOT / name, dest / name)
    ignore = shutil.ignore_patterns("__pycache__")
    for name in ("datasets", "benchmark_utils", "plots"):
        shutil.copytree(ROOT / name, dest / name, ignore=ignore)
    (dest / "solvers").mkdir()
    shutil.copy(ROOT / "solvers" / "isgd.py", dest / "solvers" / "isgd.py")
    (dest / "solvers" / "rel_probe.py").write_text(PROBE)


def cached_cells(bench):
    """Finished cells in benchopt's cache: {hash: mtime of output.pkl}."""
    root = bench / "__cache__" / "benchopt" / "runner" / "run_one_to_cvg"
    out = {}
    for cell in root.glob("*/"):
        pkl, meta = cell / "output.pkl", cell / "metadata.json"
        if pkl.is_file() and meta.is_file():
            out[cell.name] = pkl.stat().st_mtime_ns
    return out


@pytest.mark.slow
def test_killed_run_resumes_from_cache(tmp_path):
    bench = tmp_path / "bench"
    bench.mkdir()
    copy_benchmark(bench)
    probe_log = tmp_path / "probe.log"
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "REL_PROBE_LOG": str(probe_log),
        "REL_PROBE_SLEEP": "600",
    }
    cmd = [sys.executable, "-m", "benchopt", "run", str(bench), "--no-plot"]
    cmd += ["--output", str(tmp_path / "killed.parquet"), *ARGS]
    out_file = open(tmp_path / "killed.log", "w")
    proc = subprocess.Popen(
        cmd,
        cwd=bench,
        env=env,
        stdout=out_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not (cached_cells(bench) and probe_log.exists()):
            assert proc.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "ISGD never reached the cache"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        out_file.close()
    assert proc.returncode == -signal.SIGKILL
    before = cached_cells(bench)
    assert len(before) == 1, "only ISGD finished before the kill"
    assert probe_log.read_text() == "start\n", "RelProbe was running when killed"
    assert not (tmp_path / "killed.parquet").exists()

    t0 = time.monotonic()
    df, log = cli_run(
        ARGS,
        tmp_path / "resumed.parquet",
        bench=bench,
        cache=True,
        env={"REL_PROBE_LOG": str(probe_log), "REL_PROBE_SLEEP": "0"},
    )
    elapsed = time.monotonic() - t0
    status = {
        line.split("|--")[1].split("]:")[0] + "]": line.split("]:")[1].strip()
        for line in log.splitlines()
        if "|--" in line and "]:" in line and ("done" in line or "error" in line)
    }
    isgd = [s for name, s in status.items() if name.startswith("ISGD[")]
    probe = [s for name, s in status.items() if name.startswith("RelProbe[")]
    assert isgd == ["done (cached)"], log[-3000:]
    assert probe and "(cached)" not in probe[-1] and "done" in probe[-1], log[-3000:]

    after = cached_cells(bench)
    assert after.items() >= before.items(), "ISGD's cache entry was rewritten"
    assert len(after) == 2
    assert probe_log.read_text() == "start\nstart\n"
    assert set(df["solver_name"].str.split("[").str[0]) == {"ISGD", "RelProbe"}
    isgd_rows = df[df["solver_name"].str.startswith("ISGD")]
    assert isgd_rows["objective_cost"].max() >= 600
    assert np.isfinite(isgd_rows["objective_psnr_test"]).all()
    print(f"resumed run: {elapsed:.1f} s")
