"""Convergence curves against the oracle cost, with a band over repetitions.

Per solver, the median over repetitions of each repetition's curve cut at the
cost budget, with the 20%-80% band (:mod:`benchmark_utils.plot_utils`;
``docs/report.md``, "The cost curve"); short legend labels with status marks,
fixed styles per solver name, and the dashed reference lines "measurement"
and "initial theta" when the result file has them.
"""

from benchopt import BasePlot
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from benchmark_utils.plot_utils import (
    QUANTILES,
    REFERENCE_MARKER,
    REFERENCE_STYLES,
    aggregate,
    dashed_line,
    dataset_options,
    is_reference_key,
    one_curve,
    reference_values,
    run_budget,
    select,
    short_labels,
    solver_styles,
    status_tag,
    title_names,
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
# y choices offered even when a result file lacks them (the saved views of
# config.yml name them; the plot then says the column is missing), in the
# order of the dropdown; the first one is the page's default.
Y_VIEWS = ["psnr_test", "pooled_psnr_test", "value"]
Y_FIRST = Y_VIEWS + ["ssim_test", "psnr_val", "pooled_psnr_val", "ssim_val"]
Y_FIRST += ["mse_val", "psnr_train", "pooled_psnr_train", "mse_test"]
Y_LABELS = {
    "psnr_test": "Test PSNR [dB] (mean over images)",
    "psnr_val": "Validation PSNR [dB] (mean over images)",
    "psnr_train": "Train PSNR [dB] (mean over images)",
    "pooled_psnr_test": "Pooled test PSNR [dB] (of the mean MSE)",
    "pooled_psnr_val": "Pooled validation PSNR [dB] (of the mean MSE)",
    "pooled_psnr_train": "Pooled train PSNR [dB] (of the mean MSE)",
    "ssim_test": "Test SSIM (mean over images)",
    "ssim_val": "Validation SSIM (mean over images)",
    "value": "Train upper-level loss (MSE)",
    "mse_test": "Test MSE",
    "mse_val": "Validation MSE (the tuning score)",
}
# y keys drawn on a log axis by default
LOG_Y = ("value", "mse_test", "mse_val")


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
    keys += [k for k in Y_VIEWS if k not in keys]
    first = [k for k in Y_FIRST if k in keys]
    return first + sorted(k for k in keys if k not in first)


def _to_list(values):
    return [float(f"{v:.7g}") for v in values]


def reference_traces(df, y_axis, x_min, x_max):
    """Horizontal reference lines of ``y_axis`` across [x_min, x_max].

    benchopt's page draws the dashes given as points (:func:`dashed_line`);
    the offline copy reads ``level``, ``x_range`` and ``dash`` and draws one
    dashed line labelled at its right end (``scripts/offline_report.py``).
    """
    traces = []
    for label, value in reference_values(df, y_axis):
        style = REFERENCE_STYLES[label]
        x, y = dashed_line(value, x_min, x_max, style["n_dashes"], style["fill"])
        traces.append(
            {
                "x": x,
                "y": y,
                "label": label,
                "color": style["color"],
                "marker": REFERENCE_MARKER,
                "dash": style["dash"],
                "reference": True,
                "level": value,
                "x_range": [x_min, x_max],
            }
        )
    return traces


def solver_traces(df, x_col, y_col):
    """One median trace (with its band) per solver of ``df``."""
    budget = run_budget(df)
    names = df["solver_name"].unique()
    labels, styles = short_labels(names), solver_styles(names)
    traces = []
    for solver, df_solver in df.groupby("solver_name", sort=True):
        curves = [
            one_curve(df_rep, x_col, y_col, budget=budget)
            for _, df_rep in df_solver.groupby("idx_rep", sort=True)
        ]
        curves = [c for c in curves if c is not None]
        if not curves:
            continue
        x, y, low, high = aggregate(curves)
        if x.size == 0:
            continue
        style = styles[solver]
        trace = {
            "x": _to_list(x),
            "y": _to_list(y),
            "label": labels[solver] + status_tag(df_solver),
            "color": style["color"],
            "marker": style["marker"],
            "dash": style["dash"],
        }
        if low is not None:
            trace["y_low"] = _to_list(low)
            trace["y_high"] = _to_list(high)
        traces.append(trace)
    return traces


class Plot(BasePlot):
    name = "cost_curve"
    type = "scatter"
    options = {
        "dataset": dataset_options,
        "objective": ...,
        "x_axis": list(X_COLUMNS),
        "y_axis": y_options,
    }

    def plot(self, df, dataset, objective, x_axis, y_axis):
        df = select(df, dataset, objective)
        x_col, y_col = X_COLUMNS[x_axis], f"objective_{y_axis}"
        if y_col not in df.columns or x_col not in df.columns:
            return []
        traces = solver_traces(df, x_col, y_col)
        if traces:
            x_min = min(t["x"][0] for t in traces)
            x_max = max(t["x"][-1] for t in traces)
            traces += reference_traces(df, y_axis, x_min, x_max)
        return traces

    def get_metadata(self, df, dataset, objective, x_axis, y_axis):
        """Title of at most two lines: what is plotted, then how."""
        names = title_names(df)
        what = f"{names[dataset]} | {names[objective]}"
        df = select(df, dataset, objective)
        y_col = f"objective_{y_axis}"
        notes = []
        n_rep = max(int(df["idx_rep"].nunique()), 1)
        if n_rep > 1:
            low, high = QUANTILES
            notes.append(f"median, {low:.0%}-{high:.0%} band over {n_rep} reps")
        budget = run_budget(df)
        if budget is not None:
            notes.append(f"cut at the budget, cost {budget:,.0f}")
        if y_col not in df.columns:
            notes = [f"no column {y_col} in this result file"]
        return {
            "title": what + ("\n" + "; ".join(notes) if notes else ""),
            "xlabel": X_LABELS[x_axis],
            "ylabel": Y_LABELS.get(y_axis, y_axis),
            # Default scale when the page switches to this plot.
            "scale": "semilog-y" if y_axis in LOG_Y else "linear",
        }
