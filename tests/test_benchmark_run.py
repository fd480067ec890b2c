"""End-to-end: benchopt's CLI on a tiny problem.

The run goes through ``benchopt run`` in a subprocess exactly as a user would,
then the parquet is checked: cost columns exist, cost increases along each
curve, and ISGD improves test PSNR over the initial theta.
"""

import subprocess
import sys

import pandas as pd
import pytest

from tests.bench_helpers import ROOT

TINY_DATA = "denoising[n_train=6,n_test=3,patch_size=24]"
TINY_OBJ = "Bilevel imaging[budget=4000,n_checkpoints=6,n_filters=4]"


def run_benchopt(args, tmp_path, name="run"):
    """Run ``benchopt run`` on this benchmark; return the result dataframe."""
    out = tmp_path / f"{name}.parquet"
    cmd = [
        sys.executable,
        "-m",
        "benchopt",
        "run",
        str(ROOT),
        "--no-plot",
        "--no-cache",
        "--output",
        str(out),
        *args,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return pd.read_parquet(out)


@pytest.mark.slow
def test_tiny_end_to_end_run(tmp_path):
    df = run_benchopt(
        [
            "-d",
            TINY_DATA,
            "-s",
            "ISGD[q=[0,0.5],batch_size=2]",
            "-o",
            TINY_OBJ,
            "-n",
            "20",
            "--seed",
            "3",
        ],
        tmp_path,
    )
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
