"""Self-contained, offline copy of a benchopt HTML report.

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

The copy is ``<input stem>_offline.html`` next to the input; its path is
printed. ``tools/report_check.py`` opens such a copy in headless Chromium.
"""

from __future__ import annotations

import argparse
import re
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "input",
        nargs="?",
        help="benchopt result file or page (default: newest outputs/*.parquet)",
    )
    parser.add_argument("-o", "--output", help="offline page to write")
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
    return out


if __name__ == "__main__":
    main()
