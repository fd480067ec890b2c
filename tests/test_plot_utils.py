"""Legend status marks of the report (benchmark_utils.plot_utils.status_tag)."""

import pandas as pd
import pytest

from benchmark_utils.plot_utils import status_tag


def runs(*last_statuses, column="objective_status"):
    """Two rows per repetition; only the last row's status counts."""
    rows = []
    for rep, status in enumerate(last_statuses):
        rows.append({"idx_rep": rep, "stop_val": 2, column: status})
        # an earlier row with another status must not matter
        rows.append({"idx_rep": rep, "stop_val": 1, column: "ok"})
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    "statuses, tag",
    [
        (("ok", "budget"), ""),
        (("timeout",), " (timeout)"),
        (("timeout", "ok", "ok"), " (timeout 1/3 reps)"),
        (("stalled", "stalled"), " (stalled)"),
        (("diverged", "stalled", "ok"), " (diverged 1/3, stalled 1/3 reps)"),
    ],
)
def test_status_tag(statuses, tag):
    assert status_tag(runs(*statuses)) == tag


def test_status_tag_reads_old_result_files():
    """Files without a status column mark divergence from objective_diverged."""
    df = runs(1, 0, column="objective_diverged")
    assert status_tag(df) == " (diverged 1/2 reps)"
