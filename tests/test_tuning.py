"""scripts/tune.py on a hand-made parquet, and the tuning configs.

The table below is written by hand so that every rule of the tuner decides
one choice (docs/tuning.md, "Tuning protocol"): the median (not the mean),
the last evaluation (not the best one), the validation PSNR (never the test
PSNR), diverged and cut-short runs, one choice per solver variant and one
file per regulariser. The written files and configs/tuning/*.yml are checked
with benchopt's own parsing of ``--config`` files.
"""

import importlib.util
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.bench_helpers import benchmark

ROOT = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("tune", ROOT / "scripts" / "tune.py")
tune = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(tune)

#: the solvers of the benchmark's own comparison (docs/results.md)
BUILT_IN = ("AmIGO", "BSA", "HOAG", "ISGD", "MAID", "SOBA", "TTSA", "stocBiO")
DATASET = "denoising[n_test=2,n_train=4,n_val=2,patch_size=16]"
BUDGET = 1000
FOE = f"Bilevel imaging[budget={BUDGET},regulariser=foe]"
CRR = f"Bilevel imaging[budget={BUDGET},regulariser=crr]"


def _run(rows, solver, rep, val, test=20.0, status="ok", objective=FOE, **kw):
    """Three evaluations of one run; the last one has ``val`` and ``status``.

    The middle evaluation has a validation PSNR above every final one: a
    tuner that read the best instead of the last evaluation would pick it.
    """
    cost = kw.get("cost", BUDGET)
    for stop, (v, st, c) in enumerate(
        [(15.0, "ok", 0), (99.0, "ok", cost // 2), (val, status, cost)]
    ):
        rows.append(
            dict(
                dataset_name=DATASET,
                objective_name=objective,
                solver_name=solver,
                idx_rep=rep,
                stop_val=stop,
                objective_status=st,
                # the score is the validation loss as a pooled PSNR; the
                # per-image validation PSNR ranks the other way round here,
                # so a tuner that read it would choose otherwise
                objective_pooled_psnr_val=v,
                objective_psnr_val=-v,
                objective_psnr_test=test if stop == 2 else 15.0,
                objective_cost=c,
            )
        )


def _config(rows, solver, vals, objective=FOE, statuses=None, tests=None, **kw):
    for rep, val in enumerate(vals):
        status = statuses[rep] if statuses else "ok"
        test = tests[rep] if tests else 20.0
        _run(rows, solver, rep, val, test, status, objective, **kw)


def hand_made():
    rows = []
    isgd0 = "ISGD[q=0.0,step_size={}]"
    # step 10: best mean (26.7) and best test PSNR, median 20
    _config(rows, isgd0.format(10.0), [20.0, 20.0, 40.0], tests=[40.0] * 3)
    # step 100: best median among the eligible ones (25)
    _config(rows, isgd0.format(100.0), [25.0, 25.0, 24.0])
    # step 1000: best median (30) but one run diverged
    _config(
        rows, isgd0.format(1000.0), [30.0, 30.0, 1.0], statuses=["ok", "ok", "diverged"]
    )
    # step 3000: best median, runs end "budget" (inside a step) except one
    # that a deadline stopped: ineligible
    _config(
        rows, isgd0.format(3000.0), [31.0] * 3, statuses=["budget", "budget", "timeout"]
    )
    # ISGD q=0.5 is another solver: tuned on its own runs
    isgd5 = "ISGD[q=0.5,step_size={}]"
    _config(rows, isgd5.format(10.0), [22.0] * 3, statuses=["budget"] * 3)
    _config(rows, isgd5.format(100.0), [21.0] * 3)
    # SOBA: every configuration has a bad run
    _config(
        rows,
        "SOBA[step_size=0.5]",
        [23.0, 23.0, 23.0],
        statuses=["ok", "ok", "stalled"],
    )
    _config(rows, "SOBA[step_size=5.0]", [29.0, float("nan"), 29.0])
    # stocBiO: the best median is cut short before the budget
    _config(rows, "stocBiO[step_size=100.0]", [28.0] * 3, cost=BUDGET // 2)
    _config(rows, "stocBiO[step_size=30.0]", [26.0] * 3)
    # the CRR regulariser is another problem
    _config(rows, isgd0.format(10.0), [21.0] * 3, objective=CRR)
    _config(rows, isgd0.format(100.0), [19.0] * 3, objective=CRR)
    return pd.DataFrame(rows).fillna({"objective_status": "ok"})


def _by_solver(problem):
    return {s["solver"]: s for s in problem["solvers"]}


def test_tuner_picks_the_smallest_median_validation_loss_of_eligible_configs():
    problems = tune.tune(hand_made())
    assert set(problems) == {("denoising", "foe"), ("denoising", "crr")}
    foe = _by_solver(problems[("denoising", "foe")])
    assert set(foe) == {"ISGD[q=0.0]", "ISGD[q=0.5]", "SOBA", "stocBiO"}
    assert foe["ISGD[q=0.0]"]["values"] == {"step_size": 100.0}
    assert foe["ISGD[q=0.0]"]["median"] == 25.0
    assert foe["ISGD[q=0.0]"]["n_configs"] == 4
    assert foe["ISGD[q=0.0]"]["skipped"] == {
        "ISGD[q=0.0,step_size=1000.0]": ["diverged"],
        "ISGD[q=0.0,step_size=3000.0]": ["timeout"],
    }
    assert foe["ISGD[q=0.5]"]["values"] == {"step_size": 10.0}  # "budget" is ok
    assert foe["SOBA"]["chosen"] is None
    assert foe["SOBA"]["skipped"] == {
        "SOBA[step_size=0.5]": ["stalled"],
        "SOBA[step_size=5.0]": ["no validation loss"],
    }
    assert foe["stocBiO"]["values"] == {"step_size": 30.0}
    assert foe["stocBiO"]["skipped"] == {"stocBiO[step_size=100.0]": ["cut short"]}
    crr = _by_solver(problems[("denoising", "crr")])
    assert crr["ISGD[q=0.0]"]["values"] == {"step_size": 10.0}
    # choices at an end of their grid are said so
    assert foe["ISGD[q=0.0]"]["edges"] == {}  # 100 in 10 ... 3000
    assert foe["ISGD[q=0.5]"]["edges"] == {"step_size": ("low", 2)}  # 10 in 10, 100
    assert foe["stocBiO"]["edges"] == {"step_size": ("low", 2)}  # 30 in 30, 100
    assert crr["ISGD[q=0.0]"]["edges"] == {"step_size": ("low", 2)}


def test_tuner_never_reads_the_test_scores():
    df = hand_made()
    a = tune.tune(df)
    df["objective_psnr_test"] = -df["objective_psnr_test"]
    assert tune.tune(df.drop(columns="objective_psnr_test")) == a


def test_tuner_extends_a_grid_chosen_at_its_edge(monkeypatch, tmp_path):
    """The best step at the top of the grid: the tuner runs a decade more,
    then again, until the choice is inside; an extension that diverges
    bounds the grid (it is never chosen)."""
    rows = []
    for step, val in ((0.03, 18.0), (0.1, 19.0), (0.3, 19.5), (1.0, 20.0)):
        _config(rows, f"BSA[step_size={step}]", [val - 1] * 3)
    for step, val in ((1.0, 20.0), (3.0, 21.0), (10.0, 22.0)):
        _config(rows, f"BSA[step_size={step}]", [val] * 3)
    # a short second grid at its end is said so, never extended
    for inner in (0.5, 1.0, 1.9):
        _config(rows, f"SOBA[outer_ratio=0.5,step_size={inner}]", [20 + inner] * 3)
    first = tmp_path / "tuning-denoising.parquet"
    pd.DataFrame(rows).to_parquet(first)
    # what the extensions would give: 100 is better, 1000 diverges
    outcome = {100.0: (23.0, "ok"), 1000.0: (30.0, "diverged")}
    runs = []

    def fake_run(config, names, out, problem=None, n_jobs=1):
        assert problem == ("denoising", "foe")
        rows = []
        for name in names:
            step = float(tune.parse_name(name)[1]["step_size"])
            val, status = outcome[step]
            _config(rows, name, [val] * 3, statuses=[status] * 3)
        runs.append([tune.parse_name(n)[1]["step_size"] for n in names])
        path = tmp_path / f"{out}.parquet"
        pd.DataFrame(rows).to_parquet(path)
        return path

    monkeypatch.setattr(tune, "run_extension", fake_run)
    tuned = ("step_size", "outer_ratio")
    problems, paths = tune.tune_with_extensions([first], tuned, "sweep.yml")
    assert runs == [[100.0], [1000.0]]
    bsa, soba = problems[("denoising", "foe")]["solvers"]
    assert bsa["values"] == {"step_size": 100.0} and bsa["edges"] == {}
    assert bsa["skipped"] == {"BSA[step_size=1000.0]": ["diverged"]}
    assert soba["values"]["step_size"] == 1.9
    assert soba["edges"] == {"step_size": ("high", 3)}
    assert len(paths) == 3
    # without the sweep's config nothing is run, the edge is reported
    problems, _ = tune.tune_with_extensions([first], tuned)
    assert problems[("denoising", "foe")]["solvers"][0]["edges"] == {
        "step_size": ("high", 6)
    }


def test_extension_runs_only_its_problem(tmp_path, monkeypatch):
    """An extension runs the sweep's config on the one dataset and objective
    of its problem, with the workers asked for."""
    sweep = tmp_path / "sweep.yml"
    sweep.write_text(
        yaml.safe_dump(
            {
                "n-repetitions": 2,
                "dataset": ["denoising[noise_level=25.0]", "deblurring"],
                "objective": [
                    "Bilevel imaging[regulariser=foe,n_filters=48]",
                    "Bilevel imaging[regulariser=tv]",
                ],
                "solver": ["ISGD[step_size=[1.0,10.0]]"],
            }
        )
    )
    seen = []

    def fake_subprocess_run(cmd, **kwargs):
        seen.append(
            (cmd, yaml.safe_load(Path(cmd[cmd.index("--config") + 1]).read_text()))
        )

    monkeypatch.setattr(tune.subprocess, "run", fake_subprocess_run)
    names = ["ISGD[step_size=100.0]"]
    path = tune.run_extension(sweep, names, "ext", ("denoising", "foe-48"), 2)
    cmd, body = seen[0]
    assert path.name == "ext.parquet" and cmd[cmd.index("-j") + 1] == "2"
    assert body["dataset"] == ["denoising[noise_level=25.0]"]
    assert body["objective"] == ["Bilevel imaging[regulariser=foe,n_filters=48]"]
    assert body["solver"] == names and body["n-repetitions"] == 2
    tune.run_extension(sweep, names, "ext", ("deblurring", "tv"))
    assert seen[1][1]["dataset"] == ["deblurring"]
    assert seen[1][1]["objective"] == ["Bilevel imaging[regulariser=tv]"]


def test_tuner_refuses_two_problems_for_one_task_and_regulariser():
    df = hand_made()
    other = df[df["objective_name"] == FOE].copy()
    other["objective_name"] = "Bilevel imaging[budget=2000,regulariser=foe]"
    with pytest.raises(ValueError, match=r"two problems for \(denoising, foe\)"):
        tune.tune(pd.concat([df, other]))
    with pytest.raises(ValueError, match="no column 'stop_val'"):
        tune.tune(df.drop(columns="stop_val"))


def test_tuner_writes_configs_that_benchopt_accepts(tmp_path):
    parquet = tmp_path / "tuning-denoising.parquet"
    hand_made().to_parquet(parquet)
    written = tune.main([str(parquet), "--out", str(tmp_path / "best")])
    assert sorted(p.name for p in written) == ["denoising-crr.yml", "denoising.yml"]
    text = (tmp_path / "best" / "denoising.yml").read_text()
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert "# Source parquet: tuning-denoising.parquet" in header
    assert any("Protocol: docs/tuning.md" in line for line in header)
    assert any(line.startswith("# SOBA: none of its 2") for line in header)
    assert any(
        line.startswith("# ISGD[q=0.0]: step_size=100.0, median pooled psnr_val 25.00")
        for line in header
    )
    config = tune.check_config(tmp_path / "best" / "denoising.yml")
    assert config["n-repetitions"] == 5
    assert config["dataset"] == [DATASET]
    assert config["objective"] == [FOE]
    assert config["solver"] == [
        "ISGD[q=0.0,step_size=100.0]",
        "ISGD[q=0.5,step_size=10.0]",
        "stocBiO[step_size=30.0]",
    ]
    crr = tune.check_config(tmp_path / "best" / "denoising-crr.yml")
    assert crr["solver"] == ["ISGD[q=0.0,step_size=10.0]"]
    # a study tuned at a small budget writes its configs at another one
    tune.main([str(parquet), "--out", str(tmp_path / "big"), "--budget", "5000"])
    big = tune.check_config(tmp_path / "big" / "denoising.yml")
    assert big["objective"] == [FOE.replace(f"budget={BUDGET}", "budget=5000")]
    assert big["solver"] == config["solver"]


def test_models_with_filter_counts_are_tuned_apart():
    df = hand_made()
    other = df[df["objective_name"] == FOE].copy()
    other["objective_name"] = f"Bilevel imaging[budget={BUDGET},n_filters=48]"
    problems = tune.tune(pd.concat([df, other]))
    assert ("denoising", "foe-48") in problems and ("denoising", "foe") in problems
    assert tune.config_path("out", "denoising", "foe-48").name == "denoising-foe-48.yml"
    assert tune.model_key("Bilevel imaging[n_filters=8,regulariser=foe]") == "foe"
    assert tune.model_key("Bilevel imaging[n_filters=8,regulariser=tv]") == "tv"
    objective = benchmark().get_benchmark_objective()
    assert tune.DEFAULT_N_FILTERS == objective.parameters["n_filters"][0]


def test_check_config_can_fail(tmp_path):
    good = {"n-repetitions": 5, "dataset": [DATASET], "solver": ["ISGD[q=0.0]"]}
    path = tmp_path / "c.yml"
    path.write_text(yaml.safe_dump({**good, "repetitions": 5}))
    with pytest.raises(ValueError, match="'repetitions' is not an option"):
        tune.check_config(path)
    path.write_text(yaml.safe_dump({**good, "solver": ["ISGD[stepsize=1.0]"]}))
    with pytest.raises(ValueError, match="stepsize"):
        tune.check_config(path)
    path.write_text(yaml.safe_dump({**good, "dataset": ["denoising[n_vals=2]"]}))
    with pytest.raises(ValueError, match="n_vals"):
        tune.check_config(path)


def test_names_round_trip_through_benchopts_parser():
    params = {"folder": "/data/my pics, 2024", "n_val": 4, "grayscale": True}
    params |= {"source": "folder", "noise_level": 25.0, "device": None}
    name = tune.format_name("denoising", params)
    assert tune.parse_name(name) == ("denoising", params)
    with pytest.raises(ValueError, match="cannot be written"):
        tune.format_value("a=b")


@pytest.mark.parametrize("task", ["denoising", "deblurring", "inpainting"])
def test_tuning_configs_give_every_solver_the_same_grid(task):
    path = ROOT / "configs" / "tuning" / f"{task}.yml"
    config = tune.check_config(path)
    assert config["n-repetitions"] >= 3
    assert config["dataset"] == [task]
    assert config["objective"] == ["Bilevel imaging[regulariser=foe]"]
    solvers = [tune.parse_name(s) for s in config["solver"]]
    # every built-in solver has its grid; a solver added since may have none
    # (the tuner then keeps its class default)
    assert {b for b, _ in solvers} == set(BUILT_IN)
    classes = {s.name: s for s in benchmark().get_solvers()}
    for base, params in solvers:
        # the main parameter: 7 values over 3 decades, half-decade steps
        main = "outer_ratio" if base in ("SOBA", "AmIGO") else "step_size"
        values = params.pop(main)
        assert len(values) == 7 and values == sorted(values), base
        assert values[-1] / values[0] == pytest.approx(1000.0)
        ratios = [b / a for a, b in zip(values, values[1:], strict=False)]
        assert all(2.99 <= r <= 3.34 for r in ratios), base
        # the class default, chosen by the sweeps, is one of the grid's values
        # or the decade the tuner extended it by
        default = classes[base].parameters[main][0]
        near = [v for v in values + [values[0] / 10, values[-1] * 10]]
        assert any(d == pytest.approx(default, rel=0.11) for d in near), base
        if base in ("SOBA", "AmIGO"):  # the second: the inner step, below 2
            assert params.pop("step_size") == [0.5, 1.0, 1.9]
        assert set(params) <= {"q", "acceptance"}, base
    variants = [(b, p.get("q"), p.get("acceptance")) for b, p in solvers]
    assert ("ISGD", 0.0, None) in variants and ("ISGD", 0.5, None) in variants
    assert ("MAID", None, "decrease") in variants
    assert ("MAID", None, "certified") in variants


def test_short_labels_keep_only_what_tells_variants_apart():
    keys = [
        "ISGD[batch_size=4,q=0.0]",
        "ISGD[batch_size=4,q=0.5]",
        "SOBA[batch_size=4]",
    ]
    assert tune.short_labels(keys) == {
        keys[0]: "ISGD[q=0.0]",
        keys[1]: "ISGD[q=0.5]",
        keys[2]: "SOBA",
    }


def test_joint_defaults_need_eligibility_on_every_task():
    rows = []
    step = "SOBA[step_size={}]"
    # denoising: step 10 is best (30), step 1 next (28)
    _config(rows, step.format(1.0), [28.0] * 3)
    _config(rows, step.format(10.0), [30.0] * 3)
    # inpainting: step 10 diverges once, so it is no candidate although its
    # denoising score is the best; step 1 is chosen
    other = DATASET.replace("denoising", "inpainting")
    n = len(rows)
    _config(rows, step.format(1.0), [25.0] * 3)
    _config(
        rows, step.format(10.0), [27.0, 27.0, 1.0], statuses=["ok", "ok", "diverged"]
    )
    for row in rows[n:]:
        row["dataset_name"] = other
    choice = tune.joint_defaults(pd.DataFrame(rows))
    values, regret = choice["SOBA"]
    assert values == {"step_size": 1.0}
    # regret: 2 dB on denoising, 0 on inpainting (the best eligible there)
    assert regret == pytest.approx(1.0)
    # without the divergence, step 10 has no regret anywhere
    for row in rows:
        row["objective_status"] = "ok"
        if row["objective_pooled_psnr_val"] == 1.0:
            row["objective_pooled_psnr_val"] = 27.0
    assert tune.joint_defaults(pd.DataFrame(rows))["SOBA"] == ({"step_size": 10.0}, 0.0)


RUN_CONFIGS = sorted(
    p.relative_to(ROOT).as_posix()
    for p in (ROOT / "configs").rglob("*.yml")
    if not p.name.startswith("parallel_")  # --parallel-config files
)


@pytest.mark.parametrize("path", RUN_CONFIGS)
def test_every_committed_run_config_is_accepted_by_benchopt(path):
    """Each ``--config`` file of the repo (sweeps, tuned comparisons, the
    studies' written files) parses as ``benchopt run`` parses it and names
    datasets, objectives and solvers the benchmark accepts."""
    config = tune.check_config(ROOT / path)
    assert config["solver"] and config["dataset"] and config["objective"]
