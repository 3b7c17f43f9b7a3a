"""The style sheet and the small script inlined into every HTML report.

Kept apart from :mod:`inspector.reporters.html` so the page logic reads without
two hundred lines of CSS in the way.  Nothing here refers to anything outside
the page: no web fonts (a system font stack), no external script, no images
but the inline SVG charts.  The script only filters the layer table (and, above
``html.TABLE_PAGE`` layers, shows it a page at a time from the rows' JSON data
block) and opens or closes the collapsible sections; the page is complete without
it, but for a long table's later pages.
"""

from __future__ import annotations

CSS = r"""
:root {
  color-scheme: light;
  --ink: #25303b; --muted: #6b7683; --line: #e3e7ec; --bg: #f5f7fa; --card: #ffffff;
  --blue: #3b6fb6; --blue-soft: #eef3fb; --orange: #e08a2c; --green: #3a9b6b; --purple: #7b5ea7;
  --error: #c8433a; --error-soft: #fbeceb; --warning: #b7791f; --warning-soft: #fdf4e3;
  --info: #3b6fb6; --info-soft: #eef3fb; --ok: #3a9b6b; --ok-soft: #e9f6ef;
  --mono: ui-monospace, "SFMono-Regular", "DejaVu Sans Mono", Menlo, Consolas, monospace;
}
* { box-sizing: border-box; }
html { scroll-behavior: smooth; scroll-padding-top: 64px; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; }
header.top { background: linear-gradient(120deg, #1f3b63 0%, #2f5f9c 60%, #3b6fb6 100%); color: #fff; }
header.top .wrap { padding: 28px 24px 22px; }
header.top h1 { margin: 0 0 4px; font-size: 26px; font-weight: 650; letter-spacing: -0.01em; word-break: break-all; }
header.top .sub { opacity: .85; font-size: 13.5px; }
header.top .sub code { background: rgba(255,255,255,.14); color: #fff; }
header.top .badges { margin-top: 12px; display: flex; gap: 8px; flex-wrap: wrap; }
.wrap { max-width: 1180px; margin: 0 auto; padding: 0 24px; }
nav.toc { position: sticky; top: 0; z-index: 5; background: rgba(255,255,255,.96); border-bottom: 1px solid var(--line);
  backdrop-filter: blur(6px); }
nav.toc .wrap { display: flex; gap: 4px; overflow-x: auto; padding-top: 6px; padding-bottom: 6px; }
nav.toc a { color: var(--ink); text-decoration: none; padding: 6px 12px; border-radius: 6px; white-space: nowrap;
  font-size: 13.5px; }
nav.toc a:hover { background: var(--blue-soft); color: var(--blue); }
nav.toc a .count { color: var(--muted); font-size: 12px; margin-left: 4px; }
main { padding: 20px 0 40px; }
section.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 20px 22px;
  margin: 0 0 20px; box-shadow: 0 1px 2px rgba(16,24,40,.04); }
section.card > h2 { margin: 0 0 4px; font-size: 18px; font-weight: 650; }
section.card > p.lead { margin: 0 0 16px; color: var(--muted); }
h3 { font-size: 15px; margin: 20px 0 8px; }
.tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(140px, 1fr)); gap: 12px; margin: 6px 0 18px; }
.tile { border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; background: #fbfcfd; }
.tile .k { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.tile .v { font-size: 21px; font-weight: 650; margin-top: 2px; font-variant-numeric: tabular-nums; }
.tile .d { color: var(--muted); font-size: 12px; font-variant-numeric: tabular-nums; }
.grid2 { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 22px; }
@media (max-width: 860px) { .grid2 { grid-template-columns: 1fr; } }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .03em;
  background: #fafbfc; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.kv th { width: 34%; text-transform: none; letter-spacing: 0; font-size: 13px; background: none; color: var(--muted);
  font-weight: 500; }
code, .mono { font-family: var(--mono); font-size: 12.5px; }
code { background: #f1f3f6; padding: 1px 5px; border-radius: 4px; word-break: break-word; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 999px; font-size: 12px; font-weight: 600;
  border: 1px solid transparent; }
.badge.error { background: var(--error-soft); color: var(--error); border-color: #f0c9c5; }
.badge.warning { background: var(--warning-soft); color: var(--warning); border-color: #f1dcb0; }
.badge.info { background: var(--info-soft); color: var(--info); border-color: #cddbf0; }
.badge.ok { background: var(--ok-soft); color: var(--ok); border-color: #c5e6d4; }
header.top .badge { border-color: rgba(255,255,255,.35); }
.chart { margin: 8px 0 22px; }
.chart figcaption { color: var(--muted); font-size: 12.5px; margin-top: 4px; }
.chart svg.chart-svg { max-width: 100%; height: auto; display: block; }
.tablebox { max-height: min(72vh, 720px); overflow: auto; border: 1px solid var(--line); border-radius: 8px; }
.tablebox table th { position: sticky; top: 0; z-index: 1; }
.tablebox td { border-bottom-color: #eef0f3; }
tr.hidden { display: none; }
td.bar { background-image: linear-gradient(rgba(59,111,182,.16), rgba(59,111,182,.16)); background-repeat: no-repeat;
  background-position: right center; }
td.bar.macs { background-image: linear-gradient(rgba(58,155,107,.18), rgba(58,155,107,.18)); }
.tools { display: flex; gap: 10px; align-items: center; margin: 0 0 10px; flex-wrap: wrap; }
.tools input[type=search] { flex: 1 1 280px; max-width: 420px; padding: 7px 11px; border: 1px solid #cfd6de;
  border-radius: 7px; font: inherit; }
.tools input[type=search]:focus { outline: 2px solid var(--blue-soft); border-color: var(--blue); }
.tools .hint { color: var(--muted); font-size: 12.5px; }
.pager { display: inline-flex; gap: 6px; align-items: center; }
.pager button { padding: 5px 10px; border: 1px solid #cfd6de; border-radius: 8px; background: #fff; font: inherit;
  font-size: 12.5px; cursor: pointer; }
.pager button:disabled { opacity: .45; cursor: default; }
button.link { background: none; border: 1px solid #cfd6de; border-radius: 7px; padding: 6px 11px; font: inherit;
  font-size: 12.5px; color: var(--ink); cursor: pointer; }
button.link:hover { border-color: var(--blue); color: var(--blue); }
.blocks { display: flex; flex-wrap: wrap; align-items: center; gap: 6px; margin: 4px 0 6px; }
.blocks .blk { border: 1px solid #cddbf0; background: var(--blue-soft); border-radius: 7px; padding: 4px 9px;
  font-size: 12.5px; line-height: 1.3; }
.blocks .blk.layer { background: #fff; border-color: var(--line); }
.blocks .blk b { font-weight: 600; }
.blocks .blk small { color: var(--muted); display: block; font-size: 11.5px; }
.blocks .arrow { color: #a9b0bb; }
details.group { border: 1px solid var(--line); border-radius: 8px; margin: 10px 0; background: #fff; }
details.group > summary { cursor: pointer; padding: 10px 14px; font-weight: 600; list-style: none; display: flex;
  align-items: center; gap: 10px; }
details.group > summary::-webkit-details-marker { display: none; }
details.group > summary::before { content: "\25B8"; color: var(--muted); transition: transform .15s; }
details.group[open] > summary::before { transform: rotate(90deg); }
details.group > .body { padding: 0 14px 12px; }
.finding { display: grid; grid-template-columns: 92px minmax(0, 1fr); gap: 4px 12px; padding: 9px 0;
  border-top: 1px solid #eef0f3; }
.finding:first-child { border-top: 0; }
.finding .where { color: var(--muted); font-size: 12.5px; }
.finding .msg { margin: 1px 0 0; }
.code-pill { font-family: var(--mono); font-size: 12px; font-weight: 600; padding: 2px 7px; border-radius: 5px;
  display: inline-block; text-align: center; }
.code-pill.error { background: var(--error-soft); color: var(--error); }
.code-pill.warning { background: var(--warning-soft); color: var(--warning); }
.code-pill.info { background: var(--info-soft); color: var(--info); }
.ruledoc { border-left: 3px solid var(--line); padding: 2px 0 2px 14px; margin: 8px 0 14px; color: #3a4550; }
.ruledoc h4 { margin: 12px 0 4px; font-size: 13.5px; }
.ruledoc p { margin: 4px 0; }
.ruledoc pre { background: #f6f8fa; border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px;
  overflow-x: auto; font-family: var(--mono); font-size: 12px; line-height: 1.45; }
.ruledoc pre code { background: none; padding: 0; }
.empty { color: var(--muted); padding: 8px 0; }
.note { color: var(--muted); font-size: 12.5px; }
.callout { border-radius: 8px; padding: 10px 14px; margin: 8px 0 14px; }
.callout.error { background: var(--error-soft); color: #7a221c; }
.callout.warning { background: var(--warning-soft); color: #6b4610; }
.callout.ok { background: var(--ok-soft); color: #1f5c3e; }
footer { color: var(--muted); font-size: 12.5px; text-align: center; padding: 10px 0 30px; }
@media print { nav.toc { display: none; } .tablebox { max-height: none; overflow: visible; }
  section.card { break-inside: avoid-page; box-shadow: none; } details.group { break-inside: avoid; } }
"""  # noqa: E501 (inlined verbatim into every report: rewrapping would change the page's bytes)

JS = r"""
(function () {
  "use strict";
  var box = document.getElementById("layer-search");
  var rows = Array.prototype.slice.call(document.querySelectorAll("#layer-table tbody tr"));
  var shown = document.getElementById("layer-count");
  var block = document.getElementById("layer-rows");
  function count(n, total) {
    if (shown) { shown.textContent = n === total ? total + " layers" : n + " of " + total + " layers"; }
  }
  function filter() {
    var q = (box.value || "").toLowerCase().trim();
    var n = 0;
    rows.forEach(function (tr) {
      var hit = !q || (tr.getAttribute("data-search") || "").indexOf(q) >= 0;
      tr.classList.toggle("hidden", !hit);
      if (hit) { n += 1; }
    });
    count(n, rows.length);
  }
  function paged() {
    var all = JSON.parse(block.textContent), size = Number(block.getAttribute("data-page"));
    var body = document.querySelector("#layer-table tbody"), label = document.getElementById("layer-page");
    var prev = document.getElementById("layer-prev"), next = document.getElementById("layer-next");
    var hits = all, page = 0;
    function draw() {
      var pages = Math.max(1, Math.ceil(hits.length / size));
      page = Math.max(0, Math.min(page, pages - 1));
      var first = page * size, part = hits.slice(first, first + size);
      body.innerHTML = part.map(function (r) { return r[1]; }).join("");
      label.textContent = part.length ? "rows " + (first + 1) + "\u2013" + (first + part.length) : "no rows";
      prev.disabled = page === 0;
      next.disabled = page >= pages - 1;
      count(hits.length, all.length);
    }
    box.addEventListener("input", function () {
      var q = (box.value || "").toLowerCase().trim();
      hits = q ? all.filter(function (r) { return r[0].indexOf(q) >= 0; }) : all;
      page = 0;
      draw();
    });
    prev.addEventListener("click", function () { page -= 1; draw(); });
    next.addEventListener("click", function () { page += 1; draw(); });
    draw();
  }
  if (box && block) { paged(); } else if (box) { box.addEventListener("input", filter); filter(); }
  Array.prototype.forEach.call(document.querySelectorAll("button[data-toggle]"), function (btn) {
    btn.addEventListener("click", function () {
      var scope = document.getElementById(btn.getAttribute("data-toggle"));
      if (!scope) { return; }
      var all = scope.querySelectorAll("details");
      var open = Array.prototype.some.call(all, function (d) { return !d.open; });
      Array.prototype.forEach.call(all, function (d) { d.open = open; });
    });
  });
})();
"""  # noqa: E501 (inlined verbatim into every report: rewrapping would change the page's bytes)
