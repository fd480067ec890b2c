"""The offline report as a reader sees it: headless Chromium, no network.

Writes the offline copy of a result's report (``scripts/offline_report.py``),
opens it in headless Chromium with every host name unresolvable, shows every
saved view in turn, and lists the problems of :func:`page_problems` (a view
that draws nothing, a title over the plot area, a log axis without readable
ticks, a script or console error); ``--screenshots DIR`` saves one PNG per
view. ``tests/test_browser_report.py`` runs it where Chromium is installed.

Usage::

    python tools/report_check.py [outputs/<run>.parquet] [--screenshots DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import offline_report  # noqa: E402

#: shows every saved view in turn and writes what it drew into the page as
#: JSON (``<pre id="bbi-report">``), read back by :func:`browser_report`
CHECK_SCRIPT = """\
<script>
(function () {
  function wait(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }
  function texts(root, sel) {
    return Array.from(root.querySelectorAll(sel))
      .map(function (e) { return e.textContent.trim(); }).filter(Boolean);
  }
  function measureScatter() {
    var div = document.getElementById('plot_with_legend_container');
    var out = {kind: 'scatter', lines: 0};
    div.querySelectorAll('.scatterlayer .trace path.js-line').forEach(function (p) {
      if ((p.getAttribute('d') || '').length > 10) out.lines += 1;
    });
    out.legend = texts(document, '#plot_legend .curve');
    out.dash = {};
    (div.data || []).forEach(function (t) {
      if (t.name) out.dash[t.name] = (t.line && t.line.dash) || 'solid';
    });
    var title = div.querySelector('.gtitle');
    var area = div.querySelector('.nsewdrag');
    out.title = title ? title.textContent : '';
    if (title && area) {
      out.title_bottom = title.getBoundingClientRect().bottom;
      out.plot_top = area.getBoundingClientRect().top;
    }
    out.y_ticks = texts(div, '.ytick text');
    out.x_ticks = texts(div, '.xtick text');
    out.annotations = texts(div, '.annotation-text');
    return out;
  }
  function measureImages() {
    var imgs = Array.from(document.querySelectorAll('#image_container img'));
    return {
      kind: 'image',
      images: imgs.length,
      loaded: imgs.filter(function (i) { return i.naturalWidth > 0; }).length,
      min_width: imgs.length ? Math.min.apply(null, imgs.map(function (i) {
        return i.getBoundingClientRect().width; })) : 0,
      labels: texts(document, '#image_container .text-sm'),
    };
  }
  function measure() {
    var plot = document.getElementById('plot_container');
    var image = document.getElementById('image_container');
    if (image && image.style.display !== 'none') return measureImages();
    if (plot && plot.style.display !== 'none') return measureScatter();
    return {kind: 'other'};
  }
  window.addEventListener('load', function () {
    setTimeout(async function () {
      var report = {views: {}, errors: []};
      var spans = Array.from(document.querySelectorAll('span.view'));
      for (var i = 0; i < spans.length; i++) {
        var name = spans[i].textContent.trim();
        try {
          setConfig(spans[i]);
          await wait(400);
          report.views[name] = measure();
          if (report.views[name].kind === 'scatter') {
            setState({scale: 'semilog-y'});
            await wait(400);
            report.views[name].log_y_ticks = measureScatter().y_ticks;
            setConfig(spans[i]);
            await wait(100);
          }
        } catch (e) {
          report.errors.push(name + ': ' + e);
        }
      }
      var pre = document.createElement('pre');
      pre.id = 'bbi-report';
      pre.textContent = JSON.stringify(report);
      document.body.appendChild(pre);
    }, 100);
  });
})();
</script>
"""


def find_chromium():
    """Path of a Chromium-like browser, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


#: headless Chromium, every host name unresolvable (no network)
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--enable-logging=stderr",
    "--v=0",
    "--window-size=1400,1000",
)

VIEW_SCRIPT = """<script>
window.addEventListener('load', () => setTimeout(() => {
  document.querySelectorAll('span.view').forEach(el => {
    if (el.textContent.trim() === %s) setConfig(el);
  });
}, 0));
</script>
"""


def _run_chromium(page, args, script="", browser=None, timeout=180):
    """Open ``page`` (with ``script`` added before ``</body>``) in headless
    Chromium; returns (stdout, console lines reporting errors)."""
    browser = browser or find_chromium()
    if browser is None:
        raise RuntimeError("no chromium found (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        if script:
            html = Path(page).read_text(encoding="utf-8")
            page = Path(profile) / "page.html"
            page.write_text(html.replace("</body>", script + "</body>"), "utf-8")
        cmd = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
        cmd.append(Path(page).resolve().as_uri())
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, check=False
        )
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line]
    bad = ("ERROR", "Uncaught", "is not defined", "Failed to load")
    return proc.stdout, [line for line in console if any(w in line for w in bad)]


def screenshot(page, png, view=None, browser=None):
    """Save a 1400x1000 screenshot of ``page`` showing the saved view ``view``
    (default: the first); returns the console errors."""
    script = VIEW_SCRIPT % json.dumps(view) if view is not None else ""
    args = ["--virtual-time-budget=15000", f"--screenshot={Path(png).resolve()}"]
    return _run_chromium(page, args, script, browser)[1]


def browser_report(page, browser=None):
    """What ``page`` draws in each saved view, opened offline in Chromium.

    Returns
    -------
    dict
        ``views``: view name -> measures of :data:`CHECK_SCRIPT` (scatter:
        ``lines`` drawn, ``legend``, ``dash`` per trace, ``title_bottom`` and
        ``plot_top`` in px, ``y_ticks``, ``log_y_ticks`` on a log y axis,
        ``annotations``; image: ``images``, ``loaded``, ``min_width`` px,
        ``labels``); ``errors``: exceptions of the page's scripts;
        ``console``: console lines reporting errors. Empty ``views`` when
        the page never finished.
    """
    import html as html_lib

    args = ["--virtual-time-budget=60000", "--dump-dom"]
    dom, console = _run_chromium(page, args, CHECK_SCRIPT, browser)
    match = re.search(r'<pre id="bbi-report">(.*?)</pre>', dom, re.DOTALL)
    report = {"views": {}, "errors": ["no report: the page did not finish"]}
    if match:
        report = json.loads(html_lib.unescape(match.group(1)))
    report["console"] = console
    return report


def page_problems(report, min_log_ticks=3):
    """Problems of a :func:`browser_report`, one line each (empty: none).

    A view is a problem when it shows nothing (no curve drawn, no image
    loaded), when a cost curve's title reaches into the plot area, or when
    its y axis in log scale has fewer than ``min_log_ticks`` labelled ticks;
    so is every script error and console error.
    """
    problems = list(report.get("errors", [])) + list(report.get("console", []))
    if not report.get("views"):
        problems.append("no saved view was shown")
    for name, view in report.get("views", {}).items():
        if view["kind"] == "scatter":
            if view["lines"] == 0:
                why = (
                    " (no such column)" if "no column" in view.get("title", "") else ""
                )
                problems.append(f"{name}: no curve drawn{why}")
            if view.get("title_bottom", 0) > view.get("plot_top", 0):
                problems.append(
                    f"{name}: title bottom {view['title_bottom']:.0f} px below "
                    f"the top of the plot area {view['plot_top']:.0f} px"
                )
            if len(view.get("log_y_ticks", [])) < min_log_ticks:
                problems.append(f"{name}: log y ticks {view.get('log_y_ticks')}")
        elif view["kind"] == "image":
            if view["loaded"] == 0:
                problems.append(f"{name}: no image shown")
        else:
            problems.append(f"{name}: nothing shown")
    return problems


#: a saved view's tab in benchopt's page; group 1 is its name
VIEW_TAB = re.compile(r'<span onclick="setConfig\(this\)"[^>]*>([^<]+)</span>')


def _slug(name):
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("input", nargs="?", help="result file or page")
    parser.add_argument("--screenshots", metavar="DIR", help="a PNG per view")
    args = parser.parse_args(argv)
    page = offline_report.main([args.input] if args.input else [])
    html = page.read_text(encoding="utf-8")
    report = browser_report(page)
    for name, view in report["views"].items():
        print(f"  view {name!r}: {json.dumps(view)[:300]}")
    problems = page_problems(report)
    print("\n".join(problems) if problems else "browser check: no problem")
    if args.screenshots:
        folder = Path(args.screenshots)
        folder.mkdir(parents=True, exist_ok=True)
        for view in re.findall(VIEW_TAB, html):
            png = folder / f"{_slug(view)}.png"
            errors = screenshot(page, png, view=view.strip())
            print(f"  screenshot {png}", *errors, sep="\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
