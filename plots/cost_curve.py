"""Convergence curves against the oracle cost, with a band over repetitions.

For every solver, each repetition gives one curve (x, y) read from the result
rows, ordered by ``stop_val`` and cut at the cost budget (``p_obj_budget``):
the oracles stop a run within one call on the batch past the budget, and the
point past it is replaced by the linear interpolation at ``cost == budget``
(:func:`benchmark_utils.plot_utils.clip_at_budget`), whatever the x axis.
Repetitions generally reach different x values (the cost of one step depends
on the sampled batch and on warm starts), so the curves are linearly
interpolated on the union of their x values, restricted to the points covered
by at least half of the repetitions. The plot shows the median over
repetitions and, when there are at least two, the 20%-80% quantile band
(toggle "Quantiles" in the page); every finished curve ends at the budget, so
the medians there compare equal costs (docs/report.md).

Labels are the solver name plus the parameters that differ among the runs of
that solver in the plotted frame
(:func:`benchmark_utils.plot_utils.short_labels`); colours stay tied to the
full solver name. A run that did not end well is marked in the legend by the
status of its last row (``objective_status``, see docs/limits.md):
``"<solver> (diverged)"`` when every repetition diverged, ``"<solver>
(timeout 1/3 reps)"`` when one of three reached its deadline, likewise
``stalled``. A diverged run keeps its last finite theta; a cut run keeps its
last completed step.

Reference lines: when the frame has ``objective_<y>_measurement`` or
``objective_<y>_init`` (constant per run; e.g. the test PSNR of the
measurements and of the initial theta), they are drawn as dashed horizontal
lines "measurement" and "initial theta" across the plotted x range.

The y choices are the numeric ``objective_*`` columns except the oracle
counters (a y option equal to a counter column breaks the page in benchopt
1.10.0, and counters are x axes anyway) and the reference columns.
"""

from benchopt import BasePlot
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from benchmark_utils.plot_utils import (
    QUANTILES,
    aggregate,
    dashed_line,
    is_reference_key,
    one_curve,
    reference_values,
    run_budget,
    select,
    short_labels,
    status_tag,
)

# Name shown in the dropdown -> column of the result dataframe.
X_COLUMNS = {
    "cost": "objective_cost",
    "work": "objective_work",
    "ll_grad": "objective_ll_grad",
    "time": "time",
}
X_LABELS = {
    "cost": "Cost: lower-level gradients + Hessian-vector products (per image)",
    "work": "Work: every oracle, in lower-level gradient-equivalents (per image)",
    "ll_grad": "Lower-level gradients (per image)",
    "time": "Time [s] (solver only)",
}
# Objective keys that are counters or flags: never offered as y.
COUNTERS = {
    "ll_grad",
    "hvp",
    "jvp",
    "ul_grad",
    "hess_build",
    "cost",
    "work",
    "n_outer",
    "diverged",
    "status",
}
# Preferred order of the y choices; the first one is the page's default.
Y_FIRST = ["psnr_test", "value", "psnr_train", "psnr_val", "mse_test"]
Y_LABELS = {
    "psnr_test": "Test PSNR [dB]",
    "psnr_val": "Validation PSNR [dB]",
    "psnr_train": "Train PSNR [dB]",
    "value": "Train upper-level loss (MSE)",
    "mse_test": "Test MSE",
}


def y_options(df):
    """Numeric objective columns (short names) that can be used as y."""
    keys = []
    for col in df.columns:
        if not col.startswith("objective_") or col == "objective_name":
            continue
        key = col[len("objective_") :]
        if key in COUNTERS or key.startswith("final_") or is_reference_key(key):
            continue
        if not is_numeric_dtype(df[col]) or is_bool_dtype(df[col]):
            continue
        if df[col].notna().sum() == 0:
            continue
        keys.append(key)
    first = [k for k in Y_FIRST if k in keys]
    keys = first + sorted(k for k in keys if k not in first)
    # An option must offer at least one value for the page to work.
    return keys or ["value"]


def wrap_name(name, width=100):
    """Split a long parametrized name into lines at its commas."""
    lines, line = [], ""
    for part in name.split(","):
        piece = part if not line else "," + part
        if line and len(line) + len(piece) > width:
            lines.append(line + ",")
            line = part
        else:
            line += piece
    return "\n".join(lines + [line])


def _to_list(values):
    return [float(f"{v:.7g}") for v in values]


#: style of the reference lines: colour and plotly marker symbol number
#: (141 = "line-ew-open", a short horizontal dash)
REFERENCE_STYLE = {
    "measurement": {"color": "black", "marker": 141},
    "initial theta": {"color": "#404040", "marker": 141},
}


def reference_traces(df, y_axis, x_min, x_max):
    """Dashed horizontal lines of the reference levels of ``y_axis``."""
    traces = []
    for label, value in reference_values(df, y_axis):
        x, y = dashed_line(value, x_min, x_max)
        traces.append({"x": x, "y": y, "label": label, **REFERENCE_STYLE[label]})
    return traces


class Plot(BasePlot):
    name = "cost_curve"
    type = "scatter"
    options = {
        "dataset": ...,
        "objective": ...,
        "x_axis": list(X_COLUMNS),
        "y_axis": y_options,
    }

    def plot(self, df, dataset, objective, x_axis, y_axis):
        df = select(df, dataset, objective)
        x_col, y_col = X_COLUMNS[x_axis], f"objective_{y_axis}"
        if y_col not in df.columns or x_col not in df.columns:
            return []
        budget = run_budget(df)
        labels = short_labels(df["solver_name"].unique())

        traces = []
        for solver, df_solver in df.groupby("solver_name", sort=True):
            curves = []
            for _, df_rep in df_solver.groupby("idx_rep", sort=True):
                curve = one_curve(df_rep, x_col, y_col, budget=budget)
                if curve is not None:
                    curves.append(curve)
            if not curves:
                continue
            x, y, low, high = aggregate(curves)
            if x.size == 0:
                continue
            trace = {
                "x": _to_list(x),
                "y": _to_list(y),
                "label": labels[solver] + status_tag(df_solver),
                **self.get_style(solver),
            }
            if low is not None:
                trace["y_low"] = _to_list(low)
                trace["y_high"] = _to_list(high)
            traces.append(trace)
        if traces:
            x_min = min(t["x"][0] for t in traces)
            x_max = max(t["x"][-1] for t in traces)
            traces += reference_traces(df, y_axis, x_min, x_max)
        return traces

    def get_metadata(self, df, dataset, objective, x_axis, y_axis):
        ylabel = Y_LABELS.get(y_axis, y_axis)
        df = select(df, dataset, objective)
        n_rep = max(int(df["idx_rep"].nunique()), 1)
        notes = []
        if n_rep > 1:
            notes.append(
                f"median, {QUANTILES[0]:.0%}-{QUANTILES[1]:.0%} band over "
                f"{n_rep} repetitions"
            )
        budget = run_budget(df)
        if budget is not None:
            notes.append(f"curves cut at the budget, cost {budget:,.0f}")
        notes = "\n" + "; ".join(notes) if notes else ""
        return {
            "title": f"{wrap_name(objective)}\nData: {wrap_name(dataset)}{notes}",
            "xlabel": X_LABELS[x_axis],
            "ylabel": ylabel,
            # Default scale when the page switches to this plot.
            "scale": "semilog-y" if y_axis in ("value", "mse_test") else "linear",
        }
