"""End-to-end: benchopt's CLI on a tiny problem, and the report's plots.

The run goes through ``benchopt run`` in a subprocess exactly as a user would,
then the result file is checked: cost columns exist, cost increases along
each curve, ISGD improves test PSNR over the initial theta, and every plot of
``plots/`` builds from it with the expected content.
"""

import subprocess
import sys

import numpy as np
import pytest
from benchopt.results import read_results

from tests.bench_helpers import ROOT, benchmark

TINY_DATA = "denoising[n_train=6,n_val=1,n_test=2,patch_size=24,image_size=48]"
N_FILTERS = 4
TINY_OBJ = f"Bilevel imaging[budget=4000,n_checkpoints=6,n_filters={N_FILTERS}]"
SOLVERS = "ISGD[q=[0,0.5],batch_size=2]"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """Results of ``benchopt run`` on two ISGD variants (``final_results`` read)."""
    out = tmp_path_factory.mktemp("tiny") / "run.parquet"
    cmd = [sys.executable, "-m", "benchopt", "run", str(ROOT), "--no-plot"]
    cmd += ["--no-cache", "--output", str(out), "-d", TINY_DATA, "-s", SOLVERS]
    cmd += ["-o", TINY_OBJ, "-n", "20", "--seed", "3"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return read_results(out)


@pytest.mark.slow
def test_tiny_end_to_end_run(tiny_run):
    df = tiny_run
    for col in ("cost", "ll_grad", "hvp", "jvp", "ul_grad", "n_outer", "diverged"):
        assert f"objective_{col}" in df.columns
    assert set(df["solver_name"].str.contains("q=0.5")) == {True, False}
    for _, curve in df.groupby("solver_name"):
        curve = curve.sort_values("stop_val")
        cost = curve["objective_cost"].to_numpy()
        assert cost[0] == 0 and (cost[1:] > cost[:-1]).all()
        # cost = ll_grad + hvp, and the budget is respected up to one step
        assert (cost == curve["objective_ll_grad"] + curve["objective_hvp"]).all()
        assert cost[-1] >= 4000
        psnr = curve["objective_psnr_test"].to_numpy()
        assert psnr[-1] > psnr[0] + 0.5
        assert (curve["objective_diverged"] == 0).all()


@pytest.mark.slow
def test_plots_build_from_a_run(tiny_run):
    df = tiny_run
    plots = {p.name: p for p in benchmark().get_plots()}
    (dataset,) = df["dataset_name"].unique()
    (objective,) = df["objective_name"].unique()
    solvers = sorted(df["solver_name"].unique())

    traces = plots["cost_curve"].plot(df, dataset, objective, "cost", "psnr_test")
    curves = [t for t in traces if t["label"] not in ("measurement", "initial theta")]
    assert sorted(t["label"] for t in curves) == ["ISGD q=0", "ISGD q=0.5"]
    for trace in curves:
        assert trace["x"][0] == 0 and np.all(np.diff(trace["x"]) > 0)

    items = plots["reconstructions"].plot(df, dataset, objective, 0)
    # clean, measured, then one reconstruction per solver
    assert len(items) == 2 + len(solvers)
    clean = items[0]["image"]  # the whole 48 x 48 image, shown at 6 x 48 px
    assert clean.shape == (288, 288) and 0 <= clean.min() and clean.max() <= 1
    psnrs = [float(it["label"].split("PSNR ")[1].split()[0]) for it in items[1:]]
    assert all(p > psnrs[0] for p in psnrs[1:]), "recon should beat the noisy one"

    items = plots["learned_filters"].plot(df, dataset, objective, solvers[0])
    assert len(items) == N_FILTERS
    weights = [float(it["label"].split("w=")[1]) for it in items]
    assert weights == sorted(weights, reverse=True)
    assert all(it["image"].shape == (160, 160) for it in items)  # 5 x 5, x 32
    assert all(0 <= it["image"].min() and it["image"].max() <= 1 for it in items)
