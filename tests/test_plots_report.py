"""The report: cost-curve traces, image plots, plot kinds and views of
config.yml, and the offline page's assets (no browser; the browser check is
tests/test_browser_report.py).

:func:`report_frame` is a small hand-made result frame with every column and
artefact the objective writes (also used by the browser check).
"""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from benchopt.plotting.generate_html import TEMPLATE_RESULT

from benchmark_utils.metrics import psnr, ssim
from benchmark_utils.plot_utils import REFERENCE_STYLES, SOLVER_STYLES
from tests.bench_helpers import load_script

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import offline_report  # noqa: E402

BUDGET = 3000
DATASET = "denoising[noise_level=25.0]"
OTHER_DATASET = "deblurring[blur_sigma=1.5,noise_level=10.0]"
OBJECTIVE = f"Bilevel imaging[budget={BUDGET},regulariser=foe]"
ISGD = "ISGD[batch_size=4,q={q},step_size=100.0]"
MAID = "MAID[eps0=0.01]"
SOLVERS = (ISGD.format(q="0"), ISGD.format(q="0.5"), MAID)
N_TEST, SIZE = 5, 96


def load_plot(name):
    """The module ``plots/<name>.py``."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "plots" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def artefacts(seed, with_scores=True):
    """What ``save_final_results`` returns: N_TEST images, scores, filters."""
    rng = np.random.default_rng(seed)
    clean = rng.random((N_TEST, 1, SIZE, SIZE), dtype=np.float32)
    measured = np.clip(clean + 0.1 * rng.standard_normal(clean.shape), 0, 1)
    recon = np.clip(clean + 0.03 * rng.standard_normal(clean.shape), 0, 1)
    art = {
        "clean": clean,
        "measured": measured.astype(np.float32),
        "reconstructed": recon.astype(np.float32),
        "filters": rng.standard_normal((4, 1, 5, 5)).astype(np.float32),
        "log_weights": np.log([1.0, 3.0, 2.0, 0.5]).astype(np.float32),
    }
    if with_scores:  # distinct from what the images give: must be read
        art["psnr"] = np.arange(N_TEST) + 30.0
        art["ssim"] = np.linspace(0.5, 0.9, N_TEST)
        art["psnr_measured"] = np.arange(N_TEST) + 20.0
        art["ssim_measured"] = np.linspace(0.1, 0.3, N_TEST)
    return art


def report_frame(solvers=SOLVERS):
    """Two tasks (deblurring first in the file), the solvers, two repetitions
    each, ending past the budget, with every score, reference column and
    artefact; MAID's second repetition collapsed."""
    rows = []
    for dataset in (OTHER_DATASET, DATASET):
        for s, solver in enumerate(solvers):
            for rep in range(2):
                costs = [0, 1000 + 100 * rep, 2000, BUDGET + 2 + 3 * rep]
                for i, cost in enumerate(costs):
                    last = i == len(costs) - 1
                    status = "budget" if last else "ok"
                    if solver == MAID and rep == 1 and last:
                        status = "collapsed"
                    gain = (s + 1) * i / 3
                    rows.append(
                        {
                            "dataset_name": dataset,
                            "objective_name": OBJECTIVE,
                            "solver_name": solver,
                            "idx_rep": rep,
                            "stop_val": i,
                            "time": 0.001 * cost,
                            "objective_cost": cost,
                            "objective_work": 1.5 * cost,
                            "objective_ll_grad": cost // 2,
                            "objective_psnr_test": 21.0 + gain,
                            "objective_pooled_psnr_test": 20.5 + gain,
                            "objective_ssim_test": 0.6 + 0.05 * gain,
                            "objective_psnr_val": 21.5 + gain,
                            "objective_value": 0.01 / (1 + gain),
                            "objective_mse_val": 0.011 / (1 + gain),
                            "objective_status": status,
                            "p_obj_budget": BUDGET,
                            "final_results": artefacts(10 * s + rep) if last else None,
                        }
                    )
    df = pd.DataFrame(rows)
    for y, measurement, init in (
        ("psnr_test", 20.0, 21.0),
        ("pooled_psnr_test", 19.5, 20.5),
        ("ssim_test", 0.4, 0.6),
    ):
        df[f"objective_{y}_measurement"] = measurement
        df[f"objective_{y}_init"] = init
    return df


# -- cost curve ------------------------------------------------------------------
def test_y_options_put_the_views_first_and_exclude_counters_and_references():
    module = load_plot("cost_curve")
    options = module.y_options(report_frame())
    assert options[:4] == ["psnr_test", "pooled_psnr_test", "value", "ssim_test"]
    assert not {"psnr_test_measurement", "ssim_test_init", "cost"} & set(options)
    # a file without the pooled column still offers it (a saved view needs it)
    old = report_frame().drop(columns="objective_pooled_psnr_test")
    assert "pooled_psnr_test" in module.y_options(old)
    plot = module.Plot.get_instance()
    assert plot.plot(old, DATASET, OBJECTIVE, "cost", "pooled_psnr_test") == []
    meta = plot.get_metadata(old, DATASET, OBJECTIVE, "cost", "pooled_psnr_test")
    assert "no column objective_pooled_psnr_test" in meta["title"]


def test_cost_curve_traces_cut_at_the_budget_with_references():
    module = load_plot("cost_curve")
    plot = module.Plot.get_instance()
    traces = plot.plot(report_frame(), DATASET, OBJECTIVE, "cost", "psnr_test")
    by_label = {t["label"]: t for t in traces}
    assert set(by_label) == {
        "ISGD q=0",
        "ISGD q=0.5",
        "MAID (collapsed 1/2 reps)",
        "measurement",
        "initial theta",
    }
    for label in ("ISGD q=0", "ISGD q=0.5"):
        assert by_label[label]["x"][-1] == BUDGET  # cut at the budget
    # the last point of q=0's median: both repetitions interpolated at 3000
    rep0 = 21.0 + 2 / 3 + (1 / 3) * 1000 / 1002  # psnr at cost 2000, then 3002
    rep1 = 21.0 + 2 / 3 + (1 / 3) * 1000 / 1005
    assert by_label["ISGD q=0"]["y"][-1] == pytest.approx((rep0 + rep1) / 2)
    # the reference lines: dashes for benchopt's page, a level for the copy
    measurement, init = by_label["measurement"], by_label["initial theta"]
    assert set(measurement["y"]) == {20.0} and init["level"] == 21.0
    x = np.array(measurement["x"], dtype=float)
    assert np.nanmin(x) == 0 and np.nanmax(x) <= BUDGET and np.isnan(x).any()
    assert measurement["x_range"] == [0.0, BUDGET]
    assert (measurement["dash"], init["dash"]) == ("dot", "dash")
    assert measurement["color"] != init["color"]
    assert {measurement["color"], init["color"]}.isdisjoint(
        {t["color"] for t in traces if not t.get("reference")}
    )
    # the loss has no reference columns; the time axis is cut at the budget too
    traces = plot.plot(report_frame(), DATASET, OBJECTIVE, "time", "value")
    assert not any(t.get("reference") for t in traces)
    assert max(t["x"][-1] for t in traces) == pytest.approx(0.001 * BUDGET)


def test_solver_colours_do_not_depend_on_the_other_solvers():
    """Adding a solver keeps every other solver's colour, marker and dash;
    the two ISGD variants share a colour and differ by dash and marker."""
    plot = load_plot("cost_curve").Plot.get_instance()

    def styles(df):
        traces = plot.plot(df, DATASET, OBJECTIVE, "cost", "psnr_test")
        return {
            t["label"].split(" (")[0]: (t["color"], t["marker"], t["dash"])
            for t in traces
            if not t.get("reference")
        }

    few = styles(report_frame(solvers=(ISGD.format(q="0"), MAID)))
    many = styles(report_frame())
    assert few["MAID"] == many["MAID"]
    assert few["ISGD"][:2] == many["ISGD q=0"][:2]
    assert many["MAID"][0] == SOLVER_STYLES["MAID"][0]
    assert many["ISGD q=0"][0] == many["ISGD q=0.5"][0]
    assert many["ISGD q=0"][1:] != many["ISGD q=0.5"][1:]


def test_cost_curve_title_has_two_short_lines():
    module = load_plot("cost_curve")
    plot = module.Plot.get_instance()
    long_objective = OBJECTIVE[:-1] + ",eval_tol=0.0001,mu=0.001,n_filters=8]"
    df = report_frame().replace({OBJECTIVE: long_objective})
    meta = plot.get_metadata(df, DATASET, long_objective, "cost", "psnr_test")
    lines = meta["title"].split("\n")
    assert lines == [
        "denoising (noise_level=25) | Bilevel imaging (regulariser=foe)",
        f"median, 20%-80% band over 2 reps; cut at the budget, cost {BUDGET:,}",
    ]


# -- images ---------------------------------------------------------------------
def test_reconstructions_show_every_image_with_its_saved_scores():
    module = load_plot("reconstructions")
    plot = module.Plot.get_instance()
    df = report_frame()
    assert module.image_indices(df) == list(range(N_TEST))
    items = plot.plot(df, DATASET, OBJECTIVE, N_TEST - 1)
    labels = [item["label"] for item in items]
    assert labels[0] == f"clean (test #{N_TEST - 1})"
    # the saved scores of the last image (artefacts(): 20 + i, 30 + i, ...)
    assert labels[1] == "measured\nPSNR 24.00 dB, SSIM 0.300"
    assert labels[2] == "ISGD q=0\nPSNR 34.00 dB, SSIM 0.900"
    assert labels[4].startswith("MAID (collapsed 1/2 reps)\n")
    # whole images, repeated to at least DISPLAY_PX (96 -> 3 x 96)
    assert {item["image"].shape for item in items} == {(3 * SIZE, 3 * SIZE)}
    clean = df["final_results"].dropna().iloc[0]["clean"][N_TEST - 1, 0]
    np.testing.assert_array_equal(items[0]["image"][::3, ::3], clean)


def test_reconstructions_compute_the_scores_of_older_result_files():
    module = load_plot("reconstructions")
    plot = module.Plot.get_instance()
    df = report_frame()
    df["final_results"] = [
        None if art is None else artefacts(0, with_scores=False)
        for art in df["final_results"]
    ]
    art = artefacts(0, with_scores=False)
    clean, recon = art["clean"][2:3], art["reconstructed"][2:3].clip(0, 1)
    label = plot.plot(df, DATASET, OBJECTIVE, 2)[2]["label"]
    p, s = float(psnr(recon, clean)[0]), float(ssim(recon, clean)[0])
    assert label == f"ISGD q=0\nPSNR {p:.2f} dB, SSIM {s:.3f}"
    assert 20 < p < 40 and 0.5 < s < 1


def test_filters_sorted_by_weight_and_enlarged():
    module = load_plot("filters")
    plot = module.Plot.get_instance()
    items = plot.plot(report_frame(), DATASET, OBJECTIVE, MAID)
    assert [item["label"] for item in items] == [
        "#1 w=3",
        "#2 w=2",
        "#0 w=1",
        "#3 w=0.5",
    ]
    assert items[0]["image"].shape == (160, 160)  # 5 x 32 >= DISPLAY_PX


def test_every_plot_opens_on_denoising():
    """The dataset dropdowns list denoising first, whatever the file order."""
    df = report_frame()
    assert df["dataset_name"].iloc[0] == OTHER_DATASET
    for name in ("cost_curve", "reconstructions", "filters"):
        plot = load_plot(name).Plot.get_instance()
        assert plot.options["dataset"](df) == [DATASET, OTHER_DATASET]


# -- config.yml and the offline page -----------------------------------------------
def test_config_lists_every_plot_and_valid_views():
    """A kind missing from config.yml's ``plots`` would vanish from the report;
    a view's y option must be offered even by files that lack the column."""
    config = yaml.safe_load((ROOT / "config.yml").read_text())
    modules = {p.stem: load_plot(p.stem) for p in (ROOT / "plots").glob("*.py")}
    names = {m.Plot.name for m in modules.values()}
    assert set(config["plots"]) == names
    assert not {"bar_chart", "boxplot", "objective_curve"} & set(config["plots"])
    views = config["plot_configs"]
    assert {v["plot_kind"] for v in views.values()} <= names
    first = next(iter(views.values()))
    assert (first["cost_curve_x_axis"], first["cost_curve_y_axis"]) == (
        "cost",
        "psnr_test",
    )
    curve = modules["cost_curve"]
    for view in views.values():
        if view["plot_kind"] == "cost_curve":
            assert view["cost_curve_y_axis"] in curve.Y_VIEWS
            assert view["cost_curve_x_axis"] in curve.X_COLUMNS
            assert "scale" in view  # else it keeps the previous view's scale


def test_reference_styles_differ():
    measurement = REFERENCE_STYLES["measurement"]
    init = REFERENCE_STYLES["initial theta"]
    for key in ("color", "dash", "mpl_linestyle"):
        assert measurement[key] != init[key]


def test_offline_page_loads_nothing_from_the_network():
    """benchopt's result template with its CDN scripts inlined or replaced."""
    template = Path(TEMPLATE_RESULT).read_text(encoding="utf-8")
    assert len(offline_report.external_resources(template)) >= 5
    page = offline_report.inline_assets(template, plotly="/* plotly stand-in */")
    assert offline_report.external_resources(page) == []
    assert "<script src=" not in page.replace("'", '"')
    assert "/* plotly stand-in */" in page and "Readable cost curves" in page
    assert "window.gridjs" in page and "window.anime" in page
    plain = offline_report.inline_assets(template, plotly="/**/", patch=False)
    assert "Readable cost curves" not in plain and "asTitle" in plain
    with pytest.raises(ValueError, match="unknown external scripts"):
        offline_report.inline_assets('<script src="https://x.org/a.js"></script>')


def test_offline_report_without_argument_takes_the_newest_result(tmp_path):
    import os

    for age, name in ((200, "old.parquet"), (100, "new.parquet"), (0, "x.html")):
        path = tmp_path / name
        path.write_text("")
        os.utime(path, (1e9 - age, 1e9 - age))
    assert offline_report.newest_result(tmp_path) == tmp_path / "new.parquet"
    with pytest.raises(FileNotFoundError, match="benchopt run"):
        offline_report.newest_result(tmp_path / "empty")


def test_page_problems_flags_empty_views_and_overlapping_titles():
    good = {"kind": "scatter", "lines": 3, "title_bottom": 80, "plot_top": 100}
    good["log_y_ticks"] = ["0.002", "0.004", "0.006"]
    report = {
        "views": {
            "A": good,
            "B": {**good, "lines": 0},
            "C": {**good, "title_bottom": 120},
            "D": {**good, "log_y_ticks": ["0.002"]},
            "E": {"kind": "image", "images": 2, "loaded": 0},
        },
        "errors": [],
        "console": [],
    }
    check = load_script("report_check", "tools")
    problems = check.page_problems(report)
    assert [p.split(":")[0] for p in problems] == ["B", "C", "D", "E"]
    assert check.page_problems({"views": {}}) == ["no saved view was shown"]
