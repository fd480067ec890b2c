"""tools/schedule_study.py on hand-made sweeps and tuned runs: the verdicts."""

import pandas as pd

from tests.bench_helpers import load_script

ARMS = {  # (optimizer, schedule, p, q)
    "p0": ("sgd", "poly", 0.0, 0.5),
    "p05": ("sgd", "poly", 0.5, 0.5),
    "p1": ("sgd", "poly", 1.0, 0.5),
    "q0": ("sgd", "poly", 0.5, 0.0),
    "adam": ("adam", "poly", 0.5, 0.5),
}


def _rows(name, final_psnrs, step=10.0, status="budget"):
    opt, kind, p, q = ARMS[name]
    rows = []
    for rep, final in enumerate(final_psnrs):
        for k, (cost, psnr) in enumerate(((0, 20.0), (100, final))):
            rows.append(
                {
                    "dataset_name": "denoising[n=1]",
                    "p_obj_regulariser": "crr",
                    "solver_name": f"ISGD[{name},step_size={step}]",
                    "p_solver_optimizer": opt,
                    "p_solver_schedule": kind,
                    "p_solver_p": p,
                    "p_solver_q": q,
                    "p_solver_step_size": step,
                    "p_obj_budget": 100,
                    "idx_rep": rep,
                    "stop_val": k,
                    "objective_cost": cost,
                    "objective_psnr_test": psnr,
                    "objective_pooled_psnr_test": psnr - 1,
                    "objective_status": status if k else "ok",
                }
            )
    return rows


def _sweep():
    rows = []
    # q = 0: 2 of 4 steps fail; q = 0.5: 1 of 4
    for step, status in (
        (1, "budget"),
        (10, "budget"),
        (100, "diverged"),
        (1000, "collapsed"),
    ):
        rows += _rows("q0", [25.0], step, status)
    for step, status in (
        (1, "budget"),
        (10, "budget"),
        (100, "budget"),
        (1000, "diverged"),
    ):
        rows += _rows("p05", [25.0], step, status)
    return pd.DataFrame(rows)


def _final(adam):
    rows = []
    rows += _rows("p0", [24.0, 24.1, 23.9])  # p range 24 -> 26: 2 dB, not a tie
    rows += _rows("p05", [25.0, 25.2, 24.8])
    rows += _rows("p1", [26.0, 26.1, 25.9])
    rows += _rows("q0", [24.9, 25.1, 25.0])  # q range 0 dB
    rows += _rows("adam", adam)
    return pd.DataFrame(rows)


def _claims(adam):
    mod = load_script("schedule_study", "tools")
    sweep, final = mod._tag(_sweep()), mod._tag(_final(adam))
    return mod.claims(mod.stability(sweep), mod.finals(final))


def test_verdicts_follow_the_numbers():
    text = _claims([26.0, 26.2, 25.9])
    row = next(
        line
        for line in text.splitlines()
        if line.startswith("| denoising, crr | holds")
    )
    one, two, three = (cell.strip() for cell in row.split("|")[2:5])
    assert one == "holds: failed 1/4 (q=0.5) vs 2/4 (q=0)"
    assert two.startswith("holds: range over p 2.00 dB, over q 0.00 dB")
    assert three.startswith("holds: +1.00 dB")
    assert "| denoising, crr | sgd p=0.5 q=0.5 | 10 | 25.00 [24.80, 25.20] |" in text


def test_adam_within_the_spread_is_a_tie_and_worse_does_not_hold():
    tie = _claims([25.5, 24.5, 25.0]).splitlines()[-1]
    assert tie.split("|")[4].strip().startswith("tie: +0.00 dB")
    worse = _claims([22.0, 22.1, 21.9]).splitlines()[-1]
    assert worse.split("|")[4].strip().startswith("does not hold: -3.00 dB")


def test_equal_ranges_are_a_tie_whatever_their_ends():
    """The p range (0.50 dB) and the q range (0.51 dB) are each well beyond
    their arms' spread, but they differ by less than it: a tie, not a verdict
    read off the larger of two nearly equal numbers."""
    mod = load_script("schedule_study", "tools")
    rows = []
    rows += _rows("p0", [25.00, 25.02, 24.98])
    rows += _rows("p05", [25.25, 25.27, 25.23])
    rows += _rows("p1", [25.50, 25.52, 25.48])
    rows += _rows("q0", [25.76, 25.78, 25.74])
    rows += _rows("adam", [25.0, 25.0, 25.0])
    final = mod._tag(pd.DataFrame(rows))
    text = mod.claims(mod.stability(mod._tag(_sweep())), mod.finals(final))
    two = text.splitlines()[-1].split("|")[3].strip()
    assert two.startswith("tie: range over p 0.50 dB, over q 0.51 dB")
    # a clear difference of ranges still decides (the first test: 2 dB vs 0)
    res = {arm: v for (_, arm), v in mod.finals(mod._tag(_final([26.0]))).items()}
    low, high = mod.range_difference_interval(
        res,
        ["sgd p=0 q=0.5", "sgd p=0.5 q=0.5", "sgd p=1 q=0.5"],
        ["sgd p=0.5 q=0", "sgd p=0.5 q=0.5"],
    )
    assert low > 1.0 and high < 3.0
