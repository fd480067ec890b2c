"""Pick each solver's tuned configuration from a tuning sweep (docs/tuning.md).

Reads the result files of ``benchopt run . --config configs/tuning/<task>.yml``
and, for each solver (its name and the parameters the sweep does not tune,
so ``ISGD[q=0.0]`` and ``ISGD[q=0.5]`` are tuned apart), chooses the
configuration with the smallest median validation loss at the cost budget,
i.e. the largest median pooled validation PSNR (``objective_pooled_psnr_val``
= -10 log10 of the validation MSE). A configuration with a run that ended
diverged, stalled, collapsed, timed out or short of the budget is ineligible.
The test scores are never read.

A value chosen at an end of its grid is not tuned: with ``--extend CONFIG``
(the sweep's config file) the script says so, runs that solver alone with the
value a decade further out, and chooses again, until every choice is inside
its grid (the grid counts every value run, eligible or not). It then writes
``<out>/<task>.yml`` (FoE; ``<task>-<regulariser>.yml`` otherwise), a
``--config`` file of the tuned solvers with ``--n-repetitions`` (5)
repetitions, checked with benchopt's own parsing (:func:`check_config`).

Usage::

    python scripts/tune.py outputs/tuning-denoising.parquet \\
        [--extend configs/tuning/denoising.yml] [--out configs/best]
        [--tuned step_size outer_ratio] [--n-repetitions 5]
    python scripts/tune.py outputs/tuning-*.parquet --defaults
"""

from __future__ import annotations

import argparse
import math
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmark_utils.solver_ranges import (  # noqa: E402
    OUTER_RATIO_RANGE,
    STEP_SIZE_RANGE,
)

#: statuses of a run that ended well at the cost budget
OK_STATUS = ("ok", "budget")
#: the score: the validation loss, as a pooled PSNR (larger is better)
SCORE = "objective_pooled_psnr_val"
#: rounds of grid extension at most
MAX_EXTENSIONS = 6
#: a grid of at least this many values is extended; a shorter one (SOBA and
#: AmIGO's inner step, 3 values up to its stability limit) is reported only
MIN_EXTENDED_GRID = 5
#: allowed ranges of the extended parameters (benchmark_utils.solver_ranges)
RANGES = {"step_size": STEP_SIZE_RANGE, "outer_ratio": OUTER_RATIO_RANGE}
#: the columns that identify one run
RUN = ["dataset_name", "objective_name", "solver_name", "idx_rep"]
#: a counted run's last evaluation is at least this fraction of the budget
MIN_COST_FRACTION = 0.95
#: the regulariser whose file is ``<task>.yml``
DEFAULT_REGULARISER = "foe"
#: the objective's default filter count (a model key names any other)
DEFAULT_N_FILTERS = 8
PROTOCOL = "docs/tuning.md, 'Tuning protocol'"
_PLAIN = re.compile(r"[A-Za-z0-9_.+-]*")


def parse_name(name):
    """``(base, {param: value})`` of a benchopt name ``base[a=1,b=x]``."""
    from benchopt.utils.parametrized_name_mixin import _extract_options

    base, args, kwargs = _extract_options(name)
    if args:
        raise ValueError(f"unnamed parameters in {name!r}")
    return base, kwargs


def format_value(value):
    """A parameter value as benchopt's name parser reads it back."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int | float):
        return repr(value)
    text = str(value)
    if text and _PLAIN.fullmatch(text) and text not in ("True", "False", "None"):
        return text
    if "'" in text or '"' in text or "=" in text:
        raise ValueError(f"value {text!r} cannot be written in a benchopt name")
    return f"'{text}'"


def format_name(base, params):
    """``base[a=1,b=x]`` with the parameters sorted by name."""
    if not params:
        return base
    inner = ",".join(f"{k}={format_value(v)}" for k, v in sorted(params.items()))
    return f"{base}[{inner}]"


def _scalar(value):
    """A parquet cell as a plain Python value (numpy scalars unwrapped)."""
    return value.item() if hasattr(value, "item") else value


def final_rows(df):
    """The last evaluation (largest ``stop_val``) of each run."""
    missing = [c for c in RUN + ["stop_val"] if c not in df.columns]
    if missing:
        raise ValueError(f"the parquet has no column {missing[0]!r}")
    df = df.sort_values(RUN + ["stop_val"], kind="stable")
    return df.groupby(RUN, sort=True, dropna=False).tail(1).reset_index(drop=True)


def run_counts(row, budget):
    """Why the run of a final row does not count, or ``None`` if it counts."""
    status = row.get("objective_status", "ok")
    if status not in OK_STATUS:
        return str(status)
    score = row.get(SCORE, float("nan"))
    if score is None or not math.isfinite(float(score)):
        return "no validation loss"
    cost = float(row.get("objective_cost", float("nan")))
    if budget is not None and not cost >= MIN_COST_FRACTION * budget:
        return "cut short"
    return None


def _budget(objective_name):
    params = parse_name(objective_name)[1]
    return float(params["budget"]) if "budget" in params else None


def tune(df, tuned=("step_size",)):
    """Best configuration of each solver of each (task, regulariser).

    Parameters
    ----------
    df : pandas.DataFrame
        A benchopt result table (one row per evaluation).
    tuned : sequence of str
        The solver parameters the sweep varies.

    Returns
    -------
    problems : dict
        ``{(task, regulariser): problem}`` where ``problem`` has
        ``dataset`` and ``objective`` (benchopt names) and ``solvers``, a
        list of dicts with ``solver`` (the variant's name, without the tuned
        parameters), ``label`` (its short name, :func:`short_labels`),
        ``chosen`` (the full solver name, or ``None`` when no configuration
        is eligible), ``values`` (the tuned values), ``median`` (pooled
        validation PSNR, dB), ``n_runs``, ``n_configs``, ``skipped``
        (``{configuration name: reasons}`` of the ineligible ones) and
        ``edges`` (:func:`grid_edges` of the choice).

    Raises
    ------
    ValueError
        A missing column, or several datasets or objectives for one
        (task, regulariser) (the sweep is ambiguous).
    """
    tuned = tuple(tuned)
    last = final_rows(df)
    problems = {}
    for (dataset, objective), runs in last.groupby(
        ["dataset_name", "objective_name"], sort=True
    ):
        task = parse_name(dataset)[0]
        reg = model_key(objective)
        if (task, reg) in problems:
            old = problems[(task, reg)]
            raise ValueError(
                f"two problems for ({task}, {reg}): {old['dataset']} / "
                f"{old['objective']} and {dataset} / {objective}; tune one "
                "sweep at a time"
            )
        budget = _budget(objective)
        variants = {}
        for name, config_runs in runs.groupby("solver_name", sort=True):
            base, params = parse_name(name)
            fixed = {k: v for k, v in params.items() if k not in tuned}
            key = format_name(base, fixed)
            reasons = [run_counts(row, budget) for _, row in config_runs.iterrows()]
            scores = config_runs[SCORE].astype(float)
            variants.setdefault(key, []).append(
                dict(
                    name=name,
                    values={k: params[k] for k in tuned if k in params},
                    median=float(scores.median()),
                    n_runs=len(config_runs),
                    reasons=[r for r in reasons if r is not None],
                )
            )
        labels = short_labels(variants)
        solvers = []
        for key, configs in sorted(variants.items()):
            eligible = [c for c in configs if not c["reasons"]]
            best = max(eligible, key=lambda c: c["median"], default=None)
            solvers.append(
                dict(
                    solver=key,
                    label=labels[key],
                    chosen=None if best is None else best["name"],
                    values=None if best is None else best["values"],
                    median=None if best is None else best["median"],
                    n_runs=None if best is None else best["n_runs"],
                    n_configs=len(configs),
                    skipped={
                        c["name"]: sorted(set(c["reasons"]))
                        for c in configs
                        if c["reasons"]
                    },
                    edges={} if best is None else grid_edges(best, configs),
                )
            )
        problems[(task, reg)] = dict(
            dataset=dataset, objective=objective, solvers=solvers
        )
    return problems


def grid_edges(best, configs):
    """``{param: ("low" | "high", grid size)}`` for each tuned parameter whose
    chosen value is the smallest or largest of those run (with the other
    tuned parameters at their chosen values) while the grid has several."""
    edges = {}
    for name, value in best["values"].items():
        others = {k: v for k, v in best["values"].items() if k != name}
        grid = {
            float(c["values"][name])
            for c in configs
            if name in c["values"]
            and all(c["values"].get(k) == v for k, v in others.items())
        }
        if len(grid) > 1 and float(value) in (min(grid), max(grid)):
            edges[name] = ("low" if float(value) == min(grid) else "high", len(grid))
    return edges


def extensions(problems):
    """Solver names to run next: each edge value moved a decade further out,
    within the allowed step range (``benchmark_utils.solver_ranges``), as
    ``(problem key, label, parameter, side, solver name)``."""
    todo = []
    for key, problem in problems.items():
        for s in problem["solvers"]:
            for name, (side, size) in s["edges"].items():
                base, params = parse_name(s["chosen"])
                value = float(params[name]) * (10.0 if side == "high" else 0.1)
                low, high = RANGES.get(name, (0.0, math.inf))
                if size < MIN_EXTENDED_GRID or not low <= value <= high:
                    continue
                params[name] = value
                todo.append((key, s["label"], name, side, format_name(base, params)))
    return todo


def _entries_of(entries, match):
    """The config's ``entries`` (one name or a list) for which ``match`` holds;
    all of them when none does (a name this module cannot parse)."""
    entries = [entries] if isinstance(entries, str) else list(entries)
    kept = []
    for entry in entries:
        try:
            if match(entry):
                kept.append(entry)
        except (ValueError, TypeError):
            continue
    return kept or entries


def run_extension(config, names, out, problem=None, n_jobs=1):
    """``benchopt run`` of the sweep's ``config`` with only the solvers
    ``names``, on the one ``problem`` ``(task, model key)`` of :func:`tune`
    when given (its dataset and objective entries of the config), with
    ``n_jobs`` workers; returns the result file."""
    body = yaml.safe_load(Path(config).read_text())
    body.update(solver=list(names), output=out)
    if problem is not None:
        task, reg = problem
        body["dataset"] = _entries_of(
            body["dataset"], lambda e: parse_name(e)[0] == task
        )
        body["objective"] = _entries_of(
            body["objective"], lambda e: model_key(e) == reg
        )
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        yaml.safe_dump(body, f, sort_keys=False, width=1000)
    cmd = [sys.executable, "-m", "benchopt", "run", str(ROOT), "--config", f.name]
    cmd += ["--no-plot", "-j", str(n_jobs)]
    subprocess.run(cmd, cwd=ROOT, check=True)
    return ROOT / "outputs" / f"{out}.parquet"


def tune_with_extensions(paths, tuned, config=None, n_jobs=1):
    """:func:`tune` on the files ``paths``; with the sweep's ``config``,
    extend every grid whose choice sits at an end, one ``benchopt run`` per
    problem with ``n_jobs`` workers (returns the files used)."""
    paths = list(paths)
    for round_ in range(MAX_EXTENSIONS + 1):
        df = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
        problems = tune(df, tuned)
        todo = extensions(problems)
        for problem in problems.values():
            for s in problem["solvers"]:
                for name, (side, _) in s["edges"].items():
                    print(f"{s['label']}: {name} chosen at the {side} end of its grid")
        if config is None or not todo or round_ == MAX_EXTENSIONS:
            return problems, paths
        print("extending by a decade:", ", ".join(t[-1] for t in todo))
        stem = Path(paths[0]).stem
        for key in dict.fromkeys(t[0] for t in todo):
            names = [t[-1] for t in todo if t[0] == key]
            out = f"{stem}-x{round_}-{key[0]}-{key[1]}"
            paths.append(run_extension(config, names, out, key, n_jobs))
    return problems, paths


def short_labels(keys):
    """``{key: label}``: each solver variant named by the base name and only
    the parameters that tell it from the other variants of that base (e.g.
    ``ISGD[q=0.0]``)."""
    parsed = {key: parse_name(key) for key in keys}
    labels = {}
    for key, (base, params) in parsed.items():
        others = [p for b, p in parsed.values() if b == base]
        varying = {
            k: v for k, v in params.items() if any(p.get(k) != v for p in others)
        }
        labels[key] = format_name(base, varying)
    return labels


def model_key(objective):
    """The regulariser of an objective name, with its filter count when the
    name sets one other than the objective's default (``foe``, ``foe-48``,
    ``crr-32``, ``tv``)."""
    params = parse_name(objective)[1]
    reg = str(params.get("regulariser", DEFAULT_REGULARISER))
    n_filters = params.get("n_filters", DEFAULT_N_FILTERS)
    if reg == "tv" or int(n_filters) == DEFAULT_N_FILTERS:
        return reg
    return f"{reg}-{int(n_filters)}"


def config_path(out, task, regulariser):
    """``<out>/<task>.yml`` (FoE) or ``<out>/<task>-<regulariser>.yml``."""
    stem = task if regulariser == DEFAULT_REGULARISER else f"{task}-{regulariser}"
    return Path(out) / f"{stem}.yml"


def _clean_name(name):
    """A parquet name rewritten by :func:`format_name` (quoting strings)."""
    base, params = parse_name(name)
    return format_name(base, {k: _scalar(v) for k, v in params.items()})


def _with_budget(objective, budget):
    """``objective`` with its ``budget`` set (None: unchanged)."""
    if budget is None:
        return objective
    base, params = parse_name(objective)
    return format_name(base, {**params, "budget": int(budget)})


def render(problem, source, n_repetitions, tuned, budget=None):
    """Text of the config file of one (task, regulariser)."""
    lines = [
        "# Tuned solvers, written by scripts/tune.py: do not edit by hand.",
        f"# Source parquet: {source}",
        f"# Protocol: {PROTOCOL}. For each solver, the",
        "# configuration with the smallest median validation loss (largest",
        "# pooled validation PSNR, objective_pooled_psnr_val) over its",
        f"# repetitions at the cost budget; tuned parameters: {', '.join(tuned)};",
        f"# a run not ending with status {' or '.join(OK_STATUS)} at the budget",
        "# makes its configuration ineligible; a choice at an end of its grid",
        "# says so. The test scores were not read.",
        "#   benchopt run . --config <this file>",
        "#",
    ]
    if budget is not None:
        lines.insert(-2, f"# Tuned at the sweep's budget, written to run at {budget}.")
    chosen = []
    for s in problem["solvers"]:
        if s["chosen"] is None:
            lines.append(
                f"# {s['label']}: none of its {s['n_configs']} configurations "
                "is eligible"
            )
            continue
        values = ", ".join(f"{k}={v!r}" for k, v in s["values"].items())
        edge = "".join(f"; {k} at the {v[0]} end" for k, v in s["edges"].items())
        lines.append(
            f"# {s['label']}: {values}, median pooled psnr_val {s['median']:.2f} dB "
            f"over {s['n_runs']} runs; {s['n_configs']} configurations, "
            f"{len(s['skipped'])} ineligible{edge}"
        )
        chosen.append(_clean_name(s["chosen"]))
    body = {
        "n-repetitions": int(n_repetitions),
        "max-runs": 100,
        "no-timeout": True,
        "dataset": [_clean_name(problem["dataset"])],
        "objective": [_clean_name(_with_budget(problem["objective"], budget))],
        "solver": chosen,
    }
    text = yaml.safe_dump(body, sort_keys=False, width=1000, allow_unicode=True)
    return "\n".join(lines) + "\n" + text


def check_config(path, benchmark_dir=ROOT):
    """Parse a ``--config`` file as ``benchopt run`` does; raise if invalid.

    The keys must be options of ``benchopt run`` (the mapping of
    ``benchopt.cli.main._get_run_args``: ``-`` read as ``_``), and the
    dataset, objective and solver names must be accepted by the benchmark's
    own pattern checks (unknown classes or parameters raise). Nothing is run.

    Returns
    -------
    config : dict
        The parsed file.
    """
    from benchopt.benchmark import Benchmark
    from benchopt.cli.main import run

    config = yaml.safe_load(Path(path).read_text())
    options = {p.name for p in run.params}
    for key in config:
        if key.replace("-", "_") not in options:
            raise ValueError(f"{path}: {key!r} is not an option of benchopt run")
    bench = Benchmark(benchmark_dir)
    as_list = [
        v if isinstance(v, list) else [v]
        for v in (config.get(k) for k in ("dataset", "objective", "solver"))
    ]
    datasets, objectives, solvers = as_list
    for names, check in (
        (datasets, bench.check_dataset_patterns),
        (objectives, bench.check_objective_filters),
        (solvers, bench.check_solver_patterns),
    ):
        if names and names != [None]:
            check(names)
    return config


def joint_defaults(df, tuned=("step_size",)):
    """One class default per solver for several tasks' sweeps at once.

    A configuration (solver variant and tuned values) is a candidate when it
    is eligible (the rules of :func:`tune`) on every task of ``df``; its
    regret on a task is the task's best eligible median score (pooled
    validation PSNR) minus its own, and the default is the candidate with
    the smallest mean regret over the tasks (ties: the smaller value). Test
    scores are not read.

    Returns
    -------
    dict
        ``{variant name: (values, mean regret in dB)}``; ``(None, None)``
        when no configuration is eligible on every task.
    """
    tuned = tuple(tuned)
    last = final_rows(df)
    scores = {}  # variant -> values -> {task: median or None (ineligible)}
    best = {}  # (variant, task) -> best eligible median
    for (dataset, objective), runs in last.groupby(["dataset_name", "objective_name"]):
        task = parse_name(dataset)[0]
        budget = _budget(objective)
        for name, config_runs in runs.groupby("solver_name"):
            base, params = parse_name(name)
            key = format_name(base, {k: v for k, v in params.items() if k not in tuned})
            values = tuple((k, params[k]) for k in tuned if k in params)
            ok = all(run_counts(r, budget) is None for _, r in config_runs.iterrows())
            median = float(config_runs[SCORE].astype(float).median())
            scores.setdefault(key, {}).setdefault(values, {})[task] = (
                median if ok else None
            )
            if ok:
                best[(key, task)] = max(best.get((key, task), -float("inf")), median)
    tasks = sorted({parse_name(d)[0] for d in last["dataset_name"]})
    out = {}
    for key, configs in sorted(scores.items()):
        candidates = []
        for values, per_task in configs.items():
            if any(per_task.get(t) is None for t in tasks):
                continue
            regret = sum(best[(key, t)] - per_task[t] for t in tasks) / len(tasks)
            candidates.append((regret, values))
        if not candidates:
            out[key] = (None, None)
            continue
        regret, values = min(candidates, key=lambda c: (c[0], c[1]))
        out[key] = (dict(values), regret)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("parquet", nargs="+")
    parser.add_argument("--out", default=str(ROOT / "configs" / "best"))
    parser.add_argument(
        "--defaults",
        action="store_true",
        help="print one class default per solver for all the sweeps given "
        "(smallest mean validation regret among the configurations eligible "
        "on every task), write nothing",
    )
    parser.add_argument("--tuned", nargs="+", default=["step_size"])
    parser.add_argument(
        "--extend",
        metavar="CONFIG",
        help="the sweep's config file: run the solvers whose choice is at an "
        "end of its grid a decade further out, until none is",
    )
    parser.add_argument("--n-repetitions", type=int, default=5)
    parser.add_argument(
        "-j",
        "--n-jobs",
        type=int,
        default=1,
        help="benchopt workers of the extension runs (default 1)",
    )
    parser.add_argument(
        "--budget",
        type=int,
        help="the budget of the written configs (default: the sweep's; a "
        "study tuned at a smaller budget runs the chosen values at this one)",
    )
    args = parser.parse_args(argv)
    if args.n_repetitions < 1:
        parser.error("--n-repetitions must be >= 1")
    if args.n_jobs < 1:
        parser.error("--n-jobs must be >= 1")
    df = pd.concat([pd.read_parquet(p) for p in args.parquet], ignore_index=True)
    if args.defaults:
        for key, (values, regret) in joint_defaults(df, args.tuned).items():
            what = "none eligible on every task" if values is None else values
            extra = "" if regret is None else f" (mean regret {regret:.2f} dB)"
            print(f"{key}: {what}{extra}")
        return None
    problems, paths = tune_with_extensions(
        args.parquet, args.tuned, args.extend, args.n_jobs
    )
    written = []
    for (task, reg), problem in problems.items():
        path = config_path(args.out, task, reg)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            render(
                problem,
                ", ".join(Path(p).name for p in paths),
                args.n_repetitions,
                args.tuned,
                args.budget,
            )
        )
        check_config(path)
        written.append(path)
        print(f"{path}:")
        for s in problem["solvers"]:
            what = "none eligible" if s["chosen"] is None else s["values"]
            edges = ", ".join(f"{k} at the {v[0]} end" for k, v in s["edges"].items())
            edge = f" ({edges} of its grid)" if edges else ""
            print(f"  {s['label']}: {what}{edge}")
    return written


if __name__ == "__main__":
    main()
