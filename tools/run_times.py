"""Wall time of the default run and of ``configs/quick.yml``, per cell (issue 13).

Runs ``benchopt run . --no-cache --no-plot`` (the README's first command,
without the report) and the same with ``--config configs/quick.yml``, or
reads result files that such runs wrote, then prints, for every cell
(task x solver configuration x repetition), its wall time and the status of
its last row (``objective_status``: ``timeout`` marks a cell cut by its
deadline, docs/limits.md), and checks the goals of issue 13:

- the default run in at most 300 s, ``quick.yml`` in at most 60 s;
- every default cell in at most 20 s (a fifth of benchopt's default timeout
  of 100 s), so no curve is cut short.

A cell's wall time is its last ``time`` (benchopt's solver time, which
leaves the evaluation out) plus the ``eval_seconds`` that
``Objective.save_final_results`` stores (the wall time of its
``evaluate_result`` calls); the evaluation share printed is the sum of the
latter over the sum of both. The run's own wall time also counts start-up
and data set-up.

With ``--write`` the script rewrites the ``run-times`` block of
``docs/speed.md`` with the numbers it measured. Usage::

    python tools/run_times.py --write               # both runs (~2 min)
    python tools/run_times.py --only quick
    python tools/run_times.py --read default=outputs/a.parquet:341 \\
        --read quick=outputs/b.parquet:48            # reuse files (wall in s)
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from docblock import markers, read_block, write_block  # noqa: E402, F401

#: name -> extra arguments of ``benchopt run .``
RUNS = {"default": [], "quick": ["--config", "configs/quick.yml"]}
#: name -> (most seconds for the whole run, most seconds for one cell)
GOALS = {"default": (300.0, 20.0), "quick": (60.0, None)}
BLOCK = "run-times"
CELL = ["dataset_name", "objective_name", "solver_name", "idx_rep"]


def run_benchopt(name):
    """Run ``benchopt run .`` for ``name``; return (result file, wall seconds)."""
    # a unique name: benchopt appends _1, _2, ... to a name already taken
    stamp = datetime.datetime.now().strftime("%Y-%m-%d_%Hh%Mm%Ss")
    out_name = f"run_times_{name}_{stamp}"
    cmd = [sys.executable, "-m", "benchopt", "run", ".", "--no-cache", "--no-plot"]
    cmd += RUNS[name] + ["--output", out_name]
    print("$", " ".join(cmd[1:]), flush=True)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"benchopt run failed for {name} (exit {proc.returncode})")
    return ROOT / "outputs" / f"{out_name}.parquet", wall


def cell_times(path):
    """One row per cell: task, solver, repetition, seconds, eval seconds, status."""
    from benchopt.results import read_results

    df = read_results(str(path))
    cells = []
    for (dataset, _, solver, rep), d in df.groupby(CELL, sort=True):
        last = d.sort_values("stop_val").iloc[-1]
        art = last.get("final_results")
        eval_s = (
            float(art.get("eval_seconds", np.nan)) if isinstance(art, dict) else np.nan
        )
        solver_s = float(last["time"])
        cells.append(
            dict(
                task=dataset.split("[", 1)[0],
                solver=solver,
                rep=int(rep),
                seconds=solver_s + (0.0 if np.isnan(eval_s) else eval_s),
                eval_seconds=eval_s,
                status=str(last.get("objective_status", "?")),
            )
        )
    return cells


def short(solver):
    """``ISGD[...,q=0.5,...]`` -> ``ISGD q=0.5``; other solvers: their name."""
    name = solver.split("[", 1)[0]
    q = re.search(r"[\[,]q=([^,\]]+)", solver)
    return f"{name} q={q[1]}" if name == "ISGD" and q else name


def summary(name, cells, wall):
    """Lines of the report of one run and whether its goals are met."""
    total_goal, cell_goal = GOALS[name]
    slowest = max(cells, key=lambda c: c["seconds"])
    timeouts = [c for c in cells if c["status"] == "timeout"]
    evals = [c["eval_seconds"] for c in cells if not np.isnan(c["eval_seconds"])]
    secs = sum(c["seconds"] for c in cells if not np.isnan(c["eval_seconds"]))
    share = sum(evals) / secs if evals and secs > 0 else float("nan")
    ok = wall <= total_goal and not timeouts
    if cell_goal is not None:
        ok = ok and slowest["seconds"] <= cell_goal
    return dict(
        name=name,
        wall=wall,
        n_cells=len(cells),
        slowest=slowest,
        timeouts=timeouts,
        share=share,
        ok=ok,
        total_goal=total_goal,
        cell_goal=cell_goal,
    )


def print_report(name, cells, res):
    print(f"\n## {name}: {res['n_cells']} cells, wall {res['wall']:.0f} s")
    print(f"{'task':12s} {'solver':16s} rep {'cell s':>7s} {'eval s':>7s} status")
    for c in cells:
        print(
            f"{c['task']:12s} {short(c['solver']):16s} {c['rep']:3d} "
            f"{c['seconds']:7.1f} {c['eval_seconds']:7.1f} {c['status']}"
        )
    s = res["slowest"]
    goal = f" (goal <= {res['cell_goal']:.0f} s)" if res["cell_goal"] else ""
    print(
        f"slowest cell {s['seconds']:.1f} s ({s['task']}, {short(s['solver'])}){goal}; "
        f"timeouts: {len(res['timeouts'])}; evaluation share of the cells "
        f"{100 * res['share']:.0f} %; run wall {res['wall']:.0f} s "
        f"(goal <= {res['total_goal']:.0f} s): {'met' if res['ok'] else 'NOT met'}"
    )


def docs_block(results, old="", note="other work possibly running"):
    """Markdown of the ``run-times`` block of ``docs/speed.md``.

    A run not measured this time keeps its line from ``old``, the block's
    previous text.
    """
    today = datetime.date.today().isoformat()
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    lines = [
        f"Measured on {today} by `python tools/run_times.py --write` on a "
        f"{os.cpu_count()}-core CPU (OMP_NUM_THREADS {threads}; the objective's "
        f"`n_threads=1` sets torch's threads), {note}:",
        "",
    ]
    bullets = {}
    for line in old.splitlines():
        match = re.match(r"- `(benchopt run \.[^`]*)`", line)
        if match:
            bullets[match[1]] = line
    for res in results:
        cmd = "benchopt run ." + (
            " --config configs/quick.yml" if res["name"] == "quick" else ""
        )
        s = res["slowest"]
        timeouts = len(res["timeouts"])
        bullets[cmd] = (
            f"- `{cmd}`: {res['wall']:.0f} s wall for {res['n_cells']} cells "
            f"(goal {res['total_goal']:.0f} s); slowest cell {s['seconds']:.1f} s "
            f"({s['task']}, {short(s['solver'])}); "
            + (f"**{timeouts} cell(s) timed out**" if timeouts else "no cell timed out")
            + f"; evaluation {100 * res['share']:.0f} % of the cells' time."
        )
    lines += [bullets[cmd] for cmd in sorted(bullets)]
    return "\n".join(lines)


def write_docs(results, page=ROOT / "docs" / "speed.md", note=None):
    """Replace the ``run-times`` block of ``page`` with ``results``."""
    kwargs = {} if note is None else {"note": note}
    write_block(page, BLOCK, docs_block(results, read_block(page, BLOCK), **kwargs))


def parse_read(spec):
    """``name=path:wall`` -> (name, Path, float)."""
    match = re.fullmatch(r"(default|quick)=(.+):([0-9.]+)", spec)
    if not match:
        raise argparse.ArgumentTypeError(
            f"--read {spec!r}: expected default=PATH:WALL or quick=PATH:WALL"
        )
    return match[1], Path(match[2]), float(match[3])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--only", choices=sorted(RUNS), help="run only this one")
    parser.add_argument(
        "--read",
        type=parse_read,
        action="append",
        default=[],
        help="reuse a result file: default=PATH:WALL_SECONDS (repeatable)",
    )
    parser.add_argument(
        "--write", action="store_true", help="rewrite docs/speed.md's run-times block"
    )
    parser.add_argument("--note", help="how loaded the machine was (e.g. 'load 3')")
    args = parser.parse_args(argv)
    given = {name: (path, wall) for name, path, wall in args.read}
    names = [args.only] if args.only else list(RUNS)
    results = []
    for name in names:
        path, wall = given[name] if name in given else run_benchopt(name)
        cells = cell_times(path)
        res = summary(name, cells, wall)
        print_report(name, cells, res)
        results.append(res)
    if args.write:
        write_docs(results, note=args.note)
        print("\ndocs/speed.md run-times block rewritten")
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
