"""Distributed runs through benchopt's own backends (configs/parallel_*.yml).

* dask: the test starts a dask.distributed cluster on loopback with two
  worker processes, built from the ``dask_*`` settings of
  ``configs/parallel_dask.yml``, and attaches ``benchopt run
  --parallel-config`` to it through ``dask_address``. The parquet must equal
  a sequential run with the same ``--seed`` bitwise (counters, metrics,
  final theta), and both workers must have run cells.
* SLURM (submitit): no cluster here, so the test renders the sbatch script
  that submitit would submit for ``configs/parallel_slurm.yml`` (after
  benchopt's own key harmonisation) and checks its directives.
"""

import inspect

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.bench_helpers import ROOT
from tests.test_rel_runs import (
    DATA,
    cli_run,
    final_thetas,
    metric_columns,
    sorted_rows,
)

DASK_CONFIG = ROOT / "configs" / "parallel_dask.yml"
SLURM_CONFIG = ROOT / "configs" / "parallel_slurm.yml"
GRID = [
    "-d",
    DATA,
    "-o",
    "Bilevel imaging[budget=1000,n_checkpoints=4,n_filters=2]",
    "-s",
    "ISGD[batch_size=2,q=0,step_size=[100,1e8]]",
    "-n",
    "20",
    "-r",
    "2",
    "--seed",
    "5",
]


@pytest.mark.slow
def test_dask_run_equals_sequential_run(tmp_path):
    distributed = pytest.importorskip("distributed")
    config = yaml.safe_load(DASK_CONFIG.read_text())
    assert config["backend"] == "dask"
    local = {k[len("dask_") :]: v for k, v in config.items() if k.startswith("dask_")}
    assert "address" not in local, "the shipped config starts a local cluster"
    assert local["n_workers"] == 2 and local["threads_per_worker"] == 1

    sequential, _ = cli_run(GRID, tmp_path / "sequential.parquet")

    # The same settings benchopt would pass to Client(...), bound to loopback.
    with distributed.LocalCluster(host="127.0.0.1", **local) as cluster:
        attach = tmp_path / "attach.yml"
        attach.write_text(
            yaml.safe_dump(
                {"backend": "dask", "dask_address": cluster.scheduler_address}
            )
        )
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        parallel, log = cli_run(
            [*GRID, "--parallel-config", str(attach)], tmp_path / "dask.parquet"
        )
        with distributed.Client(cluster) as client:
            executed = client.run(lambda dask_worker: dask_worker.state.executed_count)
    assert "Distributed run with backend: dask" in log
    assert len(executed) == 2 and all(n > 0 for n in executed.values()), executed

    a, b = sorted_rows(sequential), sorted_rows(parallel)
    assert a.groupby(["solver_name", "idx_rep"]).ngroups == 4
    assert list(a["solver_name"]) == list(b["solver_name"])
    assert list(a["stop_val"]) == list(b["stop_val"])
    cols = metric_columns(a)
    pd.testing.assert_frame_equal(a[cols], b[cols], check_exact=True)
    thetas_a, thetas_b = final_thetas(a), final_thetas(b)
    assert len(thetas_a) == 4 and thetas_a.keys() == thetas_b.keys()
    for key, theta in thetas_a.items():
        np.testing.assert_array_equal(theta, thetas_b[key])
    # the diverging cell is kept in the distributed parquet too
    assert b["objective_diverged"].max() == 1


def test_dask_config_keys_are_client_arguments():
    distributed = pytest.importorskip("distributed")
    config = yaml.safe_load(DASK_CONFIG.read_text())
    accepted = set(inspect.signature(distributed.LocalCluster).parameters)
    for key in config:
        if key != "backend":
            assert key.startswith("dask_") and key[len("dask_") :] in accepted, key


def test_slurm_config_renders_a_valid_sbatch_script(tmp_path):
    pytest.importorskip("submitit")
    from benchopt.parallel_backends.slurm_executor import merge_slurm_configs
    from submitit.slurm.slurm import _make_sbatch_string

    config = yaml.safe_load(SLURM_CONFIG.read_text())
    assert config.pop("backend") == "submitit"
    assert "n_jobs" not in config and "slurm_n_jobs" not in config
    assert isinstance(config["slurm_time"], str), "quote slurm_time in YAML"
    # benchopt merges the benchmark config with a solver's slurm_params
    merged = merge_slurm_configs(config, {})
    params = {k[len("slurm_") :]: v for k, v in merged.items()}
    script = _make_sbatch_string(
        command="python -m submitit.core._submit",
        folder=tmp_path,
        map_count=100,
        **params,
    )
    for line in (
        "#SBATCH --time=02:00:00",
        "#SBATCH --array=0-99%32",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --gres=gpu:1",
        "#SBATCH --mem=16G",
        "export OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK",
    ):
        assert line in script, f"{line!r} missing from:\n{script}"
