"""The report: cost-curve traces, plot kinds of config.yml, offline page.

The cost curve is built from small hand-made result frames; the offline page
is checked on benchopt's own result template (no browser, fast) and, when
Chromium is installed, opened in it with the network blocked (slow).
"""

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from benchopt.plotting.generate_html import TEMPLATE_RESULT

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import offline_report  # noqa: E402

BUDGET = 3000
DATASET = "denoising[noise_level=25.0]"
OBJECTIVE = f"Bilevel imaging[budget={BUDGET}]"
ISGD = "ISGD[batch_size=4,q={q},step_size=100.0]"


def load_plot(name):
    """The ``Plot`` class of ``plots/<name>.py``."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "plots" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def frame(with_references=True):
    """Two ISGD variants, two repetitions each, ending past the budget."""
    rows = []
    for s, q in enumerate(("0", "0.5")):
        for rep in range(2):
            costs = [0, 1000 + 100 * rep, 2000, BUDGET + 2 + 3 * rep]
            for i, cost in enumerate(costs):
                rows.append(
                    {
                        "dataset_name": DATASET,
                        "objective_name": OBJECTIVE,
                        "solver_name": ISGD.format(q=q),
                        "idx_rep": rep,
                        "stop_val": i,
                        "time": 0.001 * cost,
                        "objective_cost": cost,
                        "objective_ll_grad": cost // 2,
                        "objective_psnr_test": 21.0 + s + i,
                        "objective_value": 0.01 / (1 + i),
                        "objective_status": "budget" if i == 3 else "ok",
                        "p_obj_budget": BUDGET,
                    }
                )
    df = pd.DataFrame(rows)
    if with_references:
        df["objective_psnr_test_measurement"] = 20.0
        df["objective_psnr_test_init"] = 21.0
    return df


def test_y_options_exclude_counters_and_reference_columns():
    module = load_plot("cost_curve")
    options = module.y_options(frame())
    assert options[:2] == ["psnr_test", "value"]
    assert not {"psnr_test_measurement", "psnr_test_init", "cost"} & set(options)


def test_cost_curve_traces():
    module = load_plot("cost_curve")
    plot = module.Plot.get_instance()
    traces = plot.plot(frame(), DATASET, OBJECTIVE, "cost", "psnr_test")
    by_label = {t["label"]: t for t in traces}
    assert set(by_label) == {"ISGD q=0", "ISGD q=0.5", "measurement", "initial theta"}
    for label in ("ISGD q=0", "ISGD q=0.5"):
        assert by_label[label]["x"][-1] == BUDGET  # cut at the budget
    # the last point of q=0's median: both repetitions interpolated at 3000
    rep0 = 23.0 + 1000 / 1002  # psnr 23 at cost 2000, 24 at 3002
    rep1 = 23.0 + 1000 / 1005
    assert by_label["ISGD q=0"]["y"][-1] == pytest.approx((rep0 + rep1) / 2)
    ref = by_label["measurement"]
    assert set(ref["y"]) == {20.0}
    x = np.array(ref["x"], dtype=float)
    assert np.nanmin(x) == 0 and np.nanmax(x) <= BUDGET and np.isnan(x).any()
    # the loss has no reference columns; the time axis is cut at the budget too
    traces = plot.plot(frame(), DATASET, OBJECTIVE, "time", "value")
    assert {t["label"] for t in traces} == {"ISGD q=0", "ISGD q=0.5"}
    assert max(t["x"][-1] for t in traces) == pytest.approx(0.001 * BUDGET)
    traces = plot.plot(frame(False), DATASET, OBJECTIVE, "cost", "psnr_test")
    assert len(traces) == 2


def test_config_lists_every_plot_of_the_benchmark():
    """A kind missing from config.yml's ``plots`` would vanish from the report."""
    kinds = yaml.safe_load((ROOT / "config.yml").read_text())["plots"]
    names = {load_plot(p.stem).Plot.name for p in (ROOT / "plots").glob("*.py")}
    assert set(kinds) == names
    assert not {"bar_chart", "boxplot", "objective_curve"} & set(kinds)
    views = yaml.safe_load((ROOT / "config.yml").read_text())["plot_configs"]
    assert {v["plot_kind"] for v in views.values()} <= names


def test_offline_page_loads_nothing_from_the_network():
    """benchopt's result template with its CDN scripts inlined or replaced."""
    template = Path(TEMPLATE_RESULT).read_text(encoding="utf-8")
    assert len(offline_report.external_resources(template)) >= 5
    page = offline_report.inline_assets(template, plotly="/* plotly stand-in */")
    assert offline_report.external_resources(page) == []
    assert "<script src=" not in page.replace("'", '"')
    assert "/* plotly stand-in */" in page and "Plotly.react = function" in page
    assert "window.gridjs" in page and "window.anime" in page
    with pytest.raises(ValueError, match="unknown external scripts"):
        offline_report.inline_assets('<script src="https://x.org/a.js"></script>')


@pytest.mark.slow
@pytest.mark.skipif(offline_report.find_chromium() is None, reason="no chromium")
@pytest.mark.skipif(
    not os.environ.get("BBI_BROWSER_TEST"),
    reason="opt-in (BBI_BROWSER_TEST=1): the screenshot check is timing-sensitive "
    "on a loaded 2-core machine; run scripts/offline_report.py --check-browser",
)
def test_offline_page_draws_the_curves_in_chromium(tmp_path):
    """Rendered from a parquet, opened offline: no console error, curves drawn."""
    from benchopt.results import save_results
    from PIL import Image

    result = save_results(frame(), tmp_path / "run.parquet", uniquify=False)
    page = tmp_path / "offline.html"
    assert offline_report.main([str(result), "-o", str(page)]) == 0
    shot = tmp_path / "shot.png"
    errors = offline_report.browser_check(page, shot)
    assert errors == []
    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3)
    # the two curves are drawn in the first colours of benchopt's palette
    # (matplotlib's tab:blue and tab:orange), absent from the page otherwise
    for colour in ([31, 119, 180], [255, 127, 14]):
        hits = np.all(np.abs(pixels.astype(int) - colour) <= 8, axis=1)
        assert hits.sum() > 200, colour
