"""Self-contained, offline copy of a benchopt HTML report.

benchopt 1.10's result page loads plotly.js, Grid.js and anime.js from CDNs
(and a web font and Grid.js's stylesheet), so opened without a network it is
blank (``Plotly is not defined``). This script writes a copy of the page in
which every script the page runs is inlined from installed packages:

- plotly.js: the copy shipped inside the ``plotly`` Python package
  (``plotly.offline.get_plotlyjs()``);
- anime.js 2.0.2 (the brand animation only): a stub that shows the brand
  without animating it (the only installed copy, anime.js 3.1 inside
  ``distributed``, has another timeline API and leaves the brand hidden);
- Grid.js (the ``table`` plot kind only; no Python package ships it): a
  small fallback that renders a plain HTML table, without Grid.js's
  interactive sorting and search;

and the external stylesheets (web font, Grid.js theme) are dropped (the page
falls back to system fonts). Links (``<a href>``) are left as they are: they
load nothing. The copy also makes the axes readable (docs/report.md):
linear axes print plain numbers with thousands separators instead of
"2x10^3", and a log axis spanning less than two decades gets labelled ticks
at 1, 2, 5 times the powers of ten (under one decade: every digit), written
as plain numbers ("0.003").
plotly.js 2.x (benchopt's CDN) and the packaged 3.x/4.x differ in one point
the page relies on: 4.x ignores string titles, so they are given as
``{"text": ...}``.

Usage::

    python scripts/offline_report.py outputs/<run>.html [-o out.html]
    python scripts/offline_report.py outputs/<run>.parquet [-o out.html]

A parquet (or csv) result file is first rendered with benchopt's plotting
API and this benchmark's ``config.yml`` (the same page as ``benchopt plot``).
The default output is ``<input stem>_offline.html`` next to the input.
``--check-browser`` then opens the copy in headless Chromium with the
network blocked, saves a screenshot and fails on console errors
(:func:`browser_check`).
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

#: ``<script ... src="http...">...</script>``
EXTERNAL_SCRIPT = re.compile(
    r"<script\b[^>]*\bsrc\s*=\s*[\"'](?P<src>(?:https?:)?//[^\"']+)[\"'][^>]*>"
    r"\s*</script>",
    re.IGNORECASE,
)
#: ``<link ... href="http...">`` (stylesheets, preconnects, fonts)
EXTERNAL_LINK = re.compile(
    r"<link\b[^>]*\bhref\s*=\s*[\"'](?:https?:)?//[^\"']+[\"'][^>]*>",
    re.IGNORECASE,
)

ANIME_STUB = """\
// anime.js stub (offline report): shows the final state, no animation.
window.anime = window.anime || (function () {
  function show(params) {
    document.querySelectorAll(params.targets || []).forEach(function (el) {
      el.style.opacity = 1;
    });
  }
  var anime = function (params) { show(params); return anime; };
  anime.timeline = function () {
    var tl = {add: function (params) { show(params); return tl; }};
    return tl;
  };
  return anime;
})();
"""

GRIDJS_FALLBACK = """\
// Grid.js fallback (offline report): a plain HTML table with Grid.js's class
// names, no sorting or search.
window.gridjs = window.gridjs || (function () {
  function html(text) { return {__html: String(text)}; }
  function Grid(config) { this.config = config; this.el = null; }
  Grid.prototype.on = function (event, callback) {
    if (event === 'ready') this.ready = callback;
    return this;
  };
  Grid.prototype.render = function (el) {
    this.el = el;
    var cfg = this.config;
    var wrap = document.createElement('div');
    wrap.className = 'gridjs-container';
    var table = document.createElement('table');
    table.className = 'gridjs-table';
    var head = table.createTHead().insertRow();
    var columns = cfg.columns.map(function (c) {
      return typeof c === 'string' ? {name: c} : c;
    });
    columns.forEach(function (c) {
      if (c.hidden) return;
      var th = document.createElement('th');
      th.className = 'gridjs-th';
      var content = document.createElement('div');
      content.className = 'gridjs-th-content';
      content.textContent = c.name;
      th.appendChild(content);
      head.appendChild(th);
    });
    var body = table.createTBody();
    (cfg.data || []).forEach(function (row) {
      var tr = body.insertRow();
      columns.forEach(function (c, j) {
        if (c.hidden) return;
        var td = tr.insertCell();
        td.className = 'gridjs-td';
        var value = c.formatter ? c.formatter(row[j], row, c) : row[j];
        if (value && value.__html !== undefined) td.innerHTML = value.__html;
        else td.textContent = value;
      });
    });
    wrap.appendChild(table);
    el.innerHTML = '';
    el.appendChild(wrap);
    if (this.ready) this.ready();
    return this;
  };
  Grid.prototype.forceRender = function () {
    if (this.el) this.render(this.el);
    return this;
  };
  Grid.prototype.updateConfig = function (config) {
    Object.assign(this.config, config);
    return this;
  };
  return {Grid: Grid, html: html};
})();
"""

GRIDJS_CSS = """\
.gridjs-table { border-collapse: collapse; margin: auto; font-size: 0.875rem; }
.gridjs-th, .gridjs-td { border: 1px solid #d1d5db; padding: 4px 8px; }
.gridjs-th { background: #f3f4f6; }
"""

#: wraps Plotly.react / Plotly.relayout: string titles -> {text}, readable
#: ticks on linear axes, labelled ticks on short log axes
PLOTLY_PATCH = """\
// Readable axes for the offline report (scripts/offline_report.py).
(function () {
  var AXES = ['xaxis', 'yaxis'];
  function asTitle(t) { return typeof t === 'string' ? {text: t} : t; }
  // Labelled ticks of a log axis spanning [lo, hi] (log10 units) when it
  // covers less than two decades: 1, 2, 5 x 10^k (under one decade: 1..9).
  function logTicks(lo, hi) {
    var digits = hi - lo < 1 ? [1, 2, 3, 4, 5, 6, 7, 8, 9] : [1, 2, 5];
    var vals = [], text = [];
    for (var k = Math.floor(lo) - 1; k <= Math.ceil(hi) + 1; k++) {
      digits.forEach(function (d) {
        var v = Number((d * Math.pow(10, k)).toPrecision(1));
        vals.push(v);
        text.push(String(v));
      });
    }
    return {vals: vals, text: text};
  }
  function fixLayout(layout) {
    if (!layout) return layout;
    layout.title = asTitle(layout.title);
    AXES.forEach(function (name) {
      var ax = layout[name];
      if (!ax) return;
      ax.title = asTitle(ax.title);
      if (ax.type === 'log') return;
      ax.exponentformat = 'none';
      ax.separatethousands = true;
    });
    return layout;
  }
  var react = Plotly.react, relayout = Plotly.relayout;
  Plotly.react = function (div, data, layout, config) {
    var result = react.call(Plotly, div, data, fixLayout(layout), config);
    return Promise.resolve(result).then(function (gd) {
      var full = div._fullLayout, update = {};
      AXES.forEach(function (name) {
        var ax = full && full[name];
        if (!ax || ax.type !== 'log' || !ax.range) return;
        var lo = Math.min(ax.range[0], ax.range[1]);
        var hi = Math.max(ax.range[0], ax.range[1]);
        if (hi - lo >= 2) return;
        var ticks = logTicks(lo, hi);
        update[name + '.tickmode'] = 'array';
        update[name + '.tickvals'] = ticks.vals;
        update[name + '.ticktext'] = ticks.text;
      });
      if (Object.keys(update).length) return relayout.call(Plotly, div, update);
      return gd;
    });
  };
  // benchopt sets an integer dtick on log axes after each resize; an axis
  // with explicit ticks keeps them.
  Plotly.relayout = function (div, update) {
    var args = Array.prototype.slice.call(arguments);
    var full = div && div._fullLayout;
    if (update && typeof update === 'object' && full) {
      update = Object.assign({}, update);
      AXES.forEach(function (name) {
        if (full[name] && full[name].tickmode === 'array') {
          delete update[name + '.dtick'];
        }
      });
      args[1] = update;
    }
    return relayout.apply(Plotly, args);
  };
})();
"""


def _script(code):
    """``<script>`` element holding ``code`` (``</script`` escaped)."""
    return "<script>\n" + code.replace("</script", "<\\/script") + "\n</script>"


def plotly_js():
    """plotly.js shipped in the ``plotly`` Python package."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def inline_assets(html, plotly=None):
    """The page ``html`` with its external scripts and stylesheets inlined.

    Parameters
    ----------
    html : str
        A benchopt 1.10 result page.
    plotly : str or None
        Code of plotly.js (default: :func:`plotly_js`); a small stand-in
        makes the tests fast.

    Returns
    -------
    str
        The page with no ``<script src="http...">`` and no external
        ``<link>``.

    Raises
    ------
    ValueError
        If the page loads a script this function does not know.
    """
    unknown = []

    def replace(match):
        src = match.group("src").lower()
        if "plotly" in src:
            code = plotly if plotly is not None else plotly_js()
            return _script(code) + "\n" + _script(PLOTLY_PATCH)
        if "gridjs" in src:
            return _script(GRIDJS_FALLBACK)
        if "anime" in src:
            return _script(ANIME_STUB)
        unknown.append(match.group("src"))
        return match.group(0)

    html = EXTERNAL_SCRIPT.sub(replace, html)
    if unknown:
        raise ValueError(f"page loads unknown external scripts: {unknown}")
    html = EXTERNAL_LINK.sub("", html)
    return html.replace("</head>", f"<style>\n{GRIDJS_CSS}</style>\n</head>", 1)


def external_resources(html):
    """External scripts and stylesheets a page would load (empty if none)."""
    return EXTERNAL_SCRIPT.findall(html) + EXTERNAL_LINK.findall(html)


def render_result(result_file, benchmark_dir=ROOT):
    """benchopt's HTML page of a result file, as a string.

    Uses benchopt 1.10's plotting API (``get_results`` and
    ``render_all_results``, what ``benchopt plot`` calls) with the plot
    configuration of the benchmark's ``config.yml``; writes nothing.
    """
    from benchopt.benchmark import Benchmark
    from benchopt.plotting import _sanitize_config
    from benchopt.plotting.generate_html import get_results, render_all_results
    from benchopt.results.parquet import get_metadata

    result_file = Path(result_file).resolve()
    benchmark = Benchmark(benchmark_dir)
    meta = get_metadata(result_file) if result_file.suffix == ".parquet" else {}
    config = _sanitize_config(benchmark.get_plot_config(default_config=meta))
    config.setdefault("plots", benchmark.get_plot_names())
    results = get_results([result_file], result_file.parent, benchmark, config)
    return render_all_results(results, benchmark, home="index.html")[0]


def find_chromium():
    """Path of a Chromium-like browser, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


VIEW_SCRIPT = """<script>
window.addEventListener('load', () => setTimeout(() => {
  document.querySelectorAll('span.view').forEach(el => {
    if (el.textContent.trim() === %s) setConfig(el);
  });
}, 0));
</script>
"""


def browser_check(page, screenshot, view=None, browser=None, timeout=120):
    """Open ``page`` in headless Chromium, network blocked; console errors.

    Every host name resolves to nothing (``--host-resolver-rules``), so any
    load from the network fails. Saves a screenshot (1400x1000) of the page,
    showing the saved view named ``view`` (default: the page's first view),
    and returns the console messages that report errors, e.g.
    ``Uncaught ReferenceError: Plotly is not defined``.

    Returns
    -------
    list of str
        Console lines reported as errors or uncaught exceptions.
    """
    browser = browser or find_chromium()
    if browser is None:
        raise RuntimeError("no chromium found (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        if view is not None:
            html = Path(page).read_text(encoding="utf-8")
            script = VIEW_SCRIPT % json.dumps(view)
            page = Path(profile) / "page.html"
            page.write_text(html.replace("</body>", script + "</body>"), "utf-8")
        cmd = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={profile}",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1400,1000",
            "--virtual-time-budget=15000",
            f"--screenshot={Path(screenshot).resolve()}",
            Path(page).resolve().as_uri(),
        ]
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, check=False
        )
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line]
    bad = ("ERROR", "Uncaught", "is not defined", "Failed to load")
    return [line for line in console if any(word in line for word in bad)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("input", help="benchopt result page (.html) or file")
    parser.add_argument("-o", "--output", help="offline page to write")
    parser.add_argument(
        "--check-browser",
        metavar="PNG",
        help="open the copy in headless Chromium offline, save a screenshot",
    )
    parser.add_argument("--view", help="saved view shown in the screenshot")
    args = parser.parse_args(argv)
    src = Path(args.input)
    if src.suffix == ".html":
        html = src.read_text(encoding="utf-8")
    else:
        html = render_result(src)
    out = src.with_name(src.stem + "_offline.html")
    out = Path(args.output) if args.output else out
    out.write_text(inline_assets(html), encoding="utf-8")
    print(f"wrote {out}")
    if args.check_browser:
        errors = browser_check(out, args.check_browser, view=args.view)
        print(f"screenshot {args.check_browser}")
        for line in errors:
            print(line)
        if errors:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
