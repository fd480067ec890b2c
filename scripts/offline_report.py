"""Self-contained, offline copy of a benchopt HTML report, and its check.

benchopt 1.10's result page loads plotly.js, Grid.js and anime.js from CDNs,
so opened without a network it is blank. This script writes a copy with
every script inlined or replaced (plotly.js from the ``plotly`` package, a
stub for anime.js, a plain-table fallback for Grid.js), no external
stylesheet, and a patch that makes the cost curves readable: title above the
axes, plain tick labels, labelled ticks on short log axes, dashed reference
lines labelled at their end, dash styles of solver variants in plot and
legend (``docs/report.md``, "Opening the report offline").

Usage::

    python scripts/offline_report.py                  # newest outputs/*.parquet
    python scripts/offline_report.py outputs/<run>.parquet [-o out.html]
    python scripts/offline_report.py outputs/<run>.html
    python scripts/offline_report.py --check-browser --screenshots shots/

The copy is ``<input stem>_offline.html`` next to the input; its path is
printed. ``--check-browser`` opens it in headless Chromium with the network
blocked, shows every saved view and fails on the problems of
:func:`page_problems`; ``--screenshots DIR`` saves one PNG per view.
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

#: plotly.js 3+ (4.x is packaged) ignores string titles, which benchopt's
#: page (written for plotly.js 2.12) gives: they are given as ``{text}``
PLOTLY_COMPAT = """\
(function () {
  function asTitle(t) { return typeof t === 'string' ? {text: t} : t; }
  var react = Plotly.react;
  Plotly.react = function (div, data, layout, config) {
    if (layout) {
      layout.title = asTitle(layout.title);
      ['xaxis', 'yaxis'].forEach(function (name) {
        if (layout[name]) layout[name].title = asTitle(layout[name].title);
      });
    }
    return react.call(Plotly, div, data, layout, config);
  };
})();
"""

#: wraps Plotly.react / Plotly.relayout of benchopt's page (docs/report.md)
PLOTLY_PATCH = """\
// Readable cost curves for the offline report (scripts/offline_report.py).
(function () {
  var AXES = ['xaxis', 'yaxis'];
  var CSS_DASH = {dash: 'dashed', dot: 'dotted', dashdot: 'dashed'};
  function asTitle(t) { return typeof t === 'string' ? {text: t} : t; }
  // The curves of the current view, by label (benchopt's getPlotData).
  function curvesByLabel() {
    var map = {};
    try {
      var plot = getPlotData();
      if (plot && plot.type === 'scatter') {
        plot.data.forEach(function (c) { map[c.label] = c; });
      }
    } catch (e) { /* not a benchopt result page */ }
    return map;
  }
  function fmt(v) { return String(Number(v.toPrecision(6))); }
  // Ticks of a log axis over [lo, hi] (values) spanning under two decades:
  // 1, 2, 5 x 10^k from one decade, else a 1-2-2.5-5 linear step; null
  // leaves plotly's ticks.
  function logTicks(lo, hi) {
    var span = Math.log10(hi / lo), vals = [];
    if (!(span > 0) || span >= 2) return null;
    if (span >= 1) {
      for (var k = Math.floor(Math.log10(lo)); k <= Math.ceil(Math.log10(hi)); k++) {
        [1, 2, 5].forEach(function (d) {
          var v = Number((d * Math.pow(10, k)).toPrecision(6));
          if (v >= lo && v <= hi) vals.push(v);
        });
      }
    } else {
      var raw = (hi - lo) / 6, p = Math.pow(10, Math.floor(Math.log10(raw)));
      var step = [1, 2, 2.5, 5, 10].map(function (m) { return m * p; })
        .find(function (s) { return s >= raw; });
      for (var v = Math.ceil(lo / step) * step; v <= hi * (1 + 1e-9); v += step) {
        vals.push(Number(v.toPrecision(6)));
      }
    }
    return vals.length >= 2 ? vals : null;
  }
  // Positive range of the data on one axis, widened by 5% of its log span
  // on each side (about plotly's autorange).
  function dataRange(data, key) {
    var lo = Infinity, hi = -Infinity;
    (data || []).forEach(function (t) {
      (t[key] || []).forEach(function (v) {
        if (v > 0 && isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
      });
    });
    if (!(lo < hi)) return null;
    var pad = Math.pow(hi / lo, 0.05);
    return [lo / pad, hi * pad];
  }
  function fixLayout(layout, data) {
    if (!layout) return layout;
    var title = asTitle(layout.title);
    if (title && title.text) {
      var lines = String(title.text).split(/<br\\s*\\/?>/).length;
      layout.title = Object.assign({}, title, {
        x: 0.5, xanchor: 'center', y: 1, yref: 'container', yanchor: 'top',
        pad: {t: 14}, font: {size: 16}});
      layout.margin = Object.assign({l: 80, r: 80, b: 80}, layout.margin,
                                    {t: 34 + 22 * lines});
    }
    AXES.forEach(function (name) {
      var ax = layout[name];
      if (!ax) return;
      ax.title = asTitle(ax.title);
      if (ax.type !== 'log') {
        ax.exponentformat = 'none';
        ax.separatethousands = true;
        return;
      }
      var range = dataRange(data, name[0]);
      var vals = range && logTicks(range[0], range[1]);
      if (vals) {
        ax.tickmode = 'array';
        ax.tickvals = vals;
        ax.ticktext = vals.map(fmt);
      }
    });
    return layout;
  }
  // Reference lines as one dashed line labelled at its right end; solver
  // variants with their dash; sparse markers.
  function fixTraces(data, layout) {
    var curves = curvesByLabel(), logY = layout.yaxis && layout.yaxis.type === 'log';
    var refs = [], others = [];
    (data || []).forEach(function (trace) {
      var c = curves[trace.name];
      if (!c || trace.showlegend === false) { others.push(trace); return; }
      if (c.reference) {
        trace.x = c.x_range;
        trace.y = [c.level, c.level];
        trace.mode = 'lines';
        trace.line = {color: c.color, dash: c.dash, width: 2.5};
        trace.hovertemplate = c.label + ': %{y:.4~g}<extra></extra>';
        refs.push(trace);
        return;
      }
      trace.line = Object.assign({}, trace.line, {dash: c.dash || 'solid', width: 2});
      trace.marker = Object.assign({}, trace.marker, {size: 8, maxdisplayed: 12});
      trace.hovertemplate = c.label + '<br>%{x:,.4~g}, %{y:.4~g}<extra></extra>';
      others.push(trace);
    });
    // Labels at the right end: the higher line's above it, the others' below.
    var top = Math.max.apply(null, refs.map(function (t) { return t.y[0]; }));
    refs.forEach(function (t) {
      var c = curves[t.name];
      layout.annotations = (layout.annotations || []).concat([{
        xref: 'paper', x: 1, xanchor: 'left', xshift: 4,
        yref: 'y', y: logY ? Math.log10(c.level) : c.level,
        yanchor: c.level === top ? 'bottom' : 'top',
        text: c.label, showarrow: false, font: {color: c.color, size: 12}}]);
      layout.margin = Object.assign({}, layout.margin, {r: 135});
    });
    return others.concat(refs);  // reference lines drawn last, on top
  }
  // benchopt's legend draws a solid bar per curve: dashed for dashed ones.
  function styleLegend() {
    var curves = curvesByLabel();
    document.querySelectorAll('#plot_legend .curve').forEach(function (el) {
      var c = curves[el.textContent];
      if (!c || !c.dash || c.dash === 'solid') return;
      Array.prototype.forEach.call(el.parentElement.children, function (bar) {
        if (bar.tagName !== 'DIV' || bar.style.height !== '2px') return;
        bar.style.backgroundColor = 'transparent';
        bar.style.height = '0px';
        bar.style.borderTop = '3px ' + CSS_DASH[c.dash] + ' ' + c.color;
      });
    });
  }
  var react = Plotly.react, relayout = Plotly.relayout;
  Plotly.react = function (div, data, layout, config) {
    layout = fixLayout(layout, data);
    data = fixTraces(data, layout || {});
    var result = react.call(Plotly, div, data, layout, config);
    styleLegend();
    return result;
  };
  // benchopt sets an integer dtick on log axes after each resize; an axis
  // with explicit ticks keeps them.
  Plotly.relayout = function (div, update) {
    var args = Array.prototype.slice.call(arguments);
    var layout = div && div.layout;
    if (update && typeof update === 'object' && layout) {
      update = Object.assign({}, update);
      AXES.forEach(function (name) {
        if (layout[name] && layout[name].tickmode === 'array') {
          delete update[name + '.dtick'];
        }
      });
      args[1] = update;
    }
    return relayout.apply(Plotly, args);
  };
})();
"""

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


def _script(code):
    """``<script>`` element holding ``code`` (``</script`` escaped)."""
    return "<script>\n" + code.replace("</script", "<\\/script") + "\n</script>"


def plotly_js():
    """plotly.js shipped in the ``plotly`` Python package."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def inline_assets(html, plotly=None, patch=True):
    """The page ``html`` with its external scripts and stylesheets inlined.

    Parameters
    ----------
    html : str
        A benchopt 1.10 result page.
    plotly : str or None
        Code of plotly.js (default: :func:`plotly_js`; a small stand-in
        makes the tests fast).
    patch : bool
        Add :data:`PLOTLY_PATCH` (False: benchopt's page as drawn online,
        with :data:`PLOTLY_COMPAT` only).

    Returns
    -------
    str
        The page, with no ``<script src="http...">`` and no external
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
            code = _script(plotly if plotly is not None else plotly_js())
            code += "\n" + _script(PLOTLY_COMPAT)
            return code + ("\n" + _script(PLOTLY_PATCH) if patch else "")
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
    """benchopt's HTML page of a result file (what ``benchopt plot`` writes,
    with this benchmark's ``config.yml``), as a string; writes nothing."""
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


def newest_result(folder=ROOT / "outputs"):
    """Newest ``*.parquet`` of ``folder`` (by modification time)."""
    files = sorted(Path(folder).glob("*.parquet"), key=lambda p: p.stat().st_mtime)
    if not files:
        raise FileNotFoundError(f"no result file in {folder}: run `benchopt run .`")
    return files[-1]


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
    parser.add_argument(
        "input",
        nargs="?",
        help="benchopt result file or page (default: newest outputs/*.parquet)",
    )
    parser.add_argument("-o", "--output", help="offline page to write")
    parser.add_argument(
        "--check-browser",
        action="store_true",
        help="open the copy offline in headless Chromium, check every view",
    )
    parser.add_argument(
        "--screenshots", metavar="DIR", help="save a PNG of every saved view"
    )
    parser.add_argument(
        "--plain",
        action="store_true",
        help="no readability patch: benchopt's page as drawn online",
    )
    args = parser.parse_args(argv)
    src = Path(args.input) if args.input else newest_result()
    if src.suffix == ".html":
        html = src.read_text(encoding="utf-8")
    else:
        html = render_result(src)
    out = Path(args.output or src.with_name(src.stem + "_offline.html")).resolve()
    out.write_text(inline_assets(html, patch=not args.plain), encoding="utf-8")
    print(f"Offline report (opens without a network): {out}")
    print(f"  open it with: xdg-open {out}   (or {out.as_uri()})")
    status = 0
    if args.check_browser:
        report = browser_report(out)
        for name, view in report["views"].items():
            print(f"  view {name!r}: {json.dumps(view)[:300]}")
        problems = page_problems(report)
        print("\n".join(problems) if problems else "browser check: no problem")
        status = 1 if problems else 0
    if args.screenshots:
        folder = Path(args.screenshots)
        folder.mkdir(parents=True, exist_ok=True)
        for view in re.findall(VIEW_TAB, html):
            png = folder / f"{_slug(view)}.png"
            errors = screenshot(out, png, view=view.strip())
            print(f"  screenshot {png}", *errors, sep="\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
