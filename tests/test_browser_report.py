"""The offline report opened in headless Chromium with the network blocked.

Every saved view is shown in turn (``tools/report_check.py``,
``browser_report``) and the page's problems listed (``page_problems``): a
view that draws
no curve or no image, a title reaching into the plot area, a log axis with
fewer than three labelled ticks, a script or console error. Skipped where
no Chromium is installed (``apt-get install chromium``).
"""

import sys
from pathlib import Path

import pytest

from tests.test_plots_report import report_frame

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import offline_report  # noqa: E402

from tests.bench_helpers import load_script  # noqa: E402

report_check = load_script("report_check", "tools")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        report_check.find_chromium() is None, reason="no chromium installed"
    ),
]


def _page(tmp_path, df, patch=True, edit=None):
    """Offline page of the result frame ``df`` (``edit``: str -> str on the
    rendered page), and what Chromium shows in each view."""
    from benchopt.results import save_results

    result = save_results(df, tmp_path / "run.parquet", uniquify=False)
    html = offline_report.render_result(result)
    html = edit(html) if edit else html
    page = tmp_path / "offline.html"
    page.write_text(offline_report.inline_assets(html, patch=patch), "utf-8")
    return report_check.browser_report(page)


def test_every_view_of_the_offline_page_is_readable(tmp_path):
    report = _page(tmp_path, report_frame())
    assert report_check.page_problems(report) == []
    views = report["views"]
    assert list(views) == [
        "Test PSNR vs cost",
        "Pooled PSNR vs cost",
        "Loss vs cost",
        "PSNR vs work",
        "Images",
        "Filters",
    ]
    first = views["Test PSNR vs cost"]
    assert first["title"].startswith("denoising (noise_level=25)")  # not deblurring
    # 3 solvers and 2 reference lines, each distinct in plot and legend
    assert first["lines"] >= 5
    assert first["legend"][-2:] == ["measurement", "initial theta"]
    assert first["dash"]["measurement"] == "dot"
    assert first["dash"]["initial theta"] == "dash"
    assert first["dash"]["ISGD q=0"] != first["dash"]["ISGD q=0.5"]
    assert set(first["annotations"]) == {"measurement", "initial theta"}
    assert first["title_bottom"] <= first["plot_top"]
    assert len(views["Loss vs cost"]["log_y_ticks"]) >= 3
    images = views["Images"]
    assert images["loaded"] == images["images"] == 2 + 3  # clean, measured, 3
    assert images["min_width"] >= 200
    assert any("PSNR" in label and "SSIM" in label for label in images["labels"])
    assert views["Filters"]["loaded"] == 4


def test_the_check_fails_on_empty_views_and_overlapping_titles(tmp_path):
    """benchopt's own layout (no patch) with a five-line title, on a file
    without the pooled PSNR of one saved view."""
    df = report_frame().drop(columns="objective_pooled_psnr_test")
    long_title = "<br />".join(["a long title line"] * 4)

    def edit(html):
        return html.replace('"title": "denoising', f'"title": "{long_title}<br />')

    report = _page(tmp_path, df, patch=False, edit=edit)
    problems = report_check.page_problems(report)
    assert any(p.startswith("Pooled PSNR vs cost: no curve") for p in problems)
    assert any(p.startswith("Test PSNR vs cost: title bottom") for p in problems)
    assert not any(p.startswith("Images") for p in problems)
