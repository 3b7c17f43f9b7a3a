"""The HTML model report: one self-contained page a reviewer opens in a browser.

Self-contained means the file makes no request when opened: styles and a few
lines of script are inline, charts are inline SVG (drawn by matplotlib, see
:mod:`inspector.reporters.charts`), and a Content-Security-Policy forbids any
fetch (``default-src 'none'``); the script is allowed by its hash only, so even
markup that slipped through escaping could not run a script.

Model files are hostile input: every string that comes from the file (layer
names, types, messages that quote them, metadata) goes through
:func:`html.escape`, and the SVG charts draw text as paths.  Nothing on the page
depends on the time it was written or on the folder the model lives in, so two
reports of the same file are byte-identical.

Sections: the model card (with an architecture strip), where parameters and
compute go (charts), the layer table (searchable), weight distributions, lint
findings grouped by severity with each rule's documentation, and, when given,
the activation probe and the training history.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from .. import __version__
from ..analysis.card import CardRow, TensorRow, report_identity
from ..shapetext import format_output, format_shape
from ..textsafe import scrub, visible
from ..units import count_text, fraction, number, percent, readable_size, short_float
from .html_assets import CSS, JS
from .macs_text import formula_note
from .report_text import SEVERITIES, epochs_text, written_by

if TYPE_CHECKING:  # pragma: no cover
    from ..analysis.report import HistoryView, ReportData
    from ..ir import ModelGraph
    from .charts import Chart

def e(value: Any, *, keep: str = "") -> str:
    """Escape anything for HTML text or a quoted attribute, on one line (control, line-break and bidi
    characters shown as escapes; ``keep``: characters left as they are, ``"\\n"`` in a code block)."""
    return html.escape(visible(str(value), keep=keep), quote=True)


# -- rule documentation --------------------------------------------------------------------------


def _inline(text: str) -> str:
    """Escape, then render the inline markup rule docs use: `code` and ``code``
    spans (a Sphinx role before one, ``:mod:`x```, is dropped) and *emphasis*."""
    text = re.sub(r":[a-z]+:(?=`)", "", text)
    parts = re.split(r"(``.+?``|`[^`]+`)", text)
    out = []
    for p in parts:
        if len(p) >= 4 and p.startswith("``") and p.endswith("``"):
            out.append(f"<code>{e(p[2:-2])}</code>")
        elif len(p) >= 2 and p.startswith("`") and p.endswith("`"):
            out.append(f"<code>{e(p[1:-1])}</code>")
        else:
            out.append(re.sub(r"\*(\S(?:[^*]*\S)?)\*", r"<em>\1</em>", e(p)))
    return "".join(out)


def doc_html(doc: str) -> str:
    """A rule docstring (Markdown-ish: ``## Heading``, paragraphs, ``-`` lists,
    fenced code) as escaped HTML."""
    out: list[str] = []
    para: list[str] = []
    items: list[str] = []
    lines = doc.splitlines()
    i = 0

    def flush() -> None:
        if para:
            out.append(f"<p>{_inline(' '.join(s.strip() for s in para))}</p>")
            para.clear()
        if items:
            out.append("<ul>" + "".join(f"<li>{_inline(it)}</li>" for it in items) + "</ul>")
            items.clear()

    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith("```"):
            flush()
            lang = stripped[3:].strip()
            body: list[str] = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                body.append(lines[i])
                i += 1
            cls = f' class="language-{e(lang)}"' if lang else ""
            out.append(f"<pre><code{cls}>{e(chr(10).join(body), keep=chr(10))}</code></pre>")
        elif stripped.startswith("#"):
            flush()
            out.append(f"<h4>{_inline(stripped.lstrip('#').strip())}</h4>")
        elif stripped.startswith(("- ", "* ")):
            if para:
                flush()
            items.append(stripped[2:])
        elif not stripped:
            flush()
        elif items and line.startswith((" ", "\t")):
            items[-1] += " " + stripped
        else:
            if items:
                flush()
            para.append(stripped)
        i += 1
    flush()
    return "\n".join(out)


# -- pieces ---------------------------------------------------------------------------------------


def _tile(key: str, value: str, detail: str = "") -> str:
    d = f'<div class="d">{e(detail)}</div>' if detail else ""
    return f'<div class="tile"><div class="k">{e(key)}</div><div class="v">{e(value)}</div>{d}</div>'


def _figure(chart: Chart | None, caption: str = "") -> str:
    if chart is None:
        return ""
    from .charts import inline_svg

    cap = f"<figcaption>{e(caption)}</figcaption>" if caption else ""
    return (f'<figure class="chart" id="chart-{e(chart.key)}" data-chart="{e(chart.key)}">'
            f"{inline_svg(chart)}{cap}</figure>")


def _io_rows(items: Sequence[TensorRow]) -> str:
    if not items:
        return '<span class="note">none</span>'
    return "<br>".join(f"<code>{e(t.name)}</code> {e(t.dtype)} {e(t.shape)}" for t in items)


def _card_cell(row: CardRow) -> str:
    return f"<code>{e(row.value)}</code>" if row.code else e(row.value)


def _card_rows(data: ReportData) -> list[tuple[str, str]]:
    """(label, HTML) rows of the model card."""
    card = data.card
    rows: list[tuple[str, str]] = [("File", f"<code>{e(data.file_name)}</code>")]
    rows += [(r.label, _card_cell(r)) for r in report_identity(card)]
    rows += [("Inputs", _io_rows(card.inputs)), ("Outputs", _io_rows(card.outputs))]
    rows += [(r.label, _card_cell(r)) for r in card.amounts]
    rows += [(f"Metadata: {k}", e(v)) for k, v in card.metadata_props]
    return rows


def _architecture(graph: ModelGraph | None) -> str:
    if graph is None:
        return ""
    from ..analysis.diagram import diagram
    from .mermaid import caption

    d = diagram(graph, max_nodes=30)
    chips = []
    for b in d.blocks:
        if b.is_layer:
            sub = e(b.types[0]) + (f" · {e(count_text(b.params))}" if b.params else "")
            chips.append(f'<span class="blk layer" title="{e(b.detail)}"><b>{e(b.title)}</b>'
                         f'<small>{sub}</small></span>')
        else:
            n = len(b.layers)
            what = f"{b.repeat}× {n // b.repeat} layers" if b.repeat > 1 else f"{n} layers"
            sub = e(what) + (f" · {e(count_text(b.params))}" if b.params else "")
            chips.append(f'<span class="blk"><b>{e(b.title)}</b><small>{sub}</small></span>')
    linear = all(b == a + 1 for a, b in d.edges) and len(d.edges) == len(d.blocks) - 1
    joint = '<span class="arrow">→</span>' if linear else '<span class="arrow">·</span>'
    note = caption(graph, drawn=d)
    if not linear:
        note += " Branches and merges are not drawn here; see the layer table's Connected to column."
    return (f'<h3>Architecture at a glance</h3><div class="blocks">{joint.join(chips)}</div>'
            f'<p class="note">{e(note)}</p>')


def _overview(data: ReportData, graph: ModelGraph | None) -> str:
    s = data.summary
    t = s.totals
    tiles = [
        _tile("Parameters", count_text(t.params), f"{t.params:,}"),
        _tile("Trainable", count_text(t.trainable), percent(t.trainable, t.params)),
        _tile("Non-trainable", count_text(t.non_trainable),
              percent(t.non_trainable, t.params)),
        _tile("Weight memory", readable_size(t.bytes), f"{t.bytes:,} bytes"),
    ]
    if s.macs_formula is not None:
        tiles.append(_tile("MACs / sample", s.macs_formula.text(), formula_note(s)))
    elif s.macs_total is not None:
        tiles.append(_tile("MACs / sample", count_text(s.macs_total),
                           "complete" if s.macs_complete else "lower bound: some layers unknown"))
    tiles.append(_tile("Layers", f"{len(s.rows):,}", f"{len({r.type for r in s.rows})} types"))
    if data.card.doc.get("file_size") is not None:
        tiles.append(_tile("File size", readable_size(data.card.doc["file_size"])))
    kv = "".join(f"<tr><th>{e(k)}</th><td>{v}</td></tr>" for k, v in _card_rows(data))
    parts = [f'<div class="tiles">{"".join(tiles)}</div>', f'<table class="kv">{kv}</table>']
    if s.security_warning:
        parts.insert(0, f'<div class="callout error">{e(s.security_warning)}</div>')
    parts.append(_architecture(graph))
    notes = list(data.notes)
    if notes:
        parts.append("<h3>Notes</h3><ul>" + "".join(f"<li>{e(n)}</li>" for n in notes[:50]) + "</ul>")
        if len(notes) > 50:
            parts.append(f'<p class="note">… and {len(notes) - 50} more notes.</p>')
    return _section("overview", "Model card", "What the file holds, as read without running it.", "".join(parts))


def _section(sid: str, title: str, lead: str, body: str) -> str:
    lead_html = f'<p class="lead">{e(lead)}</p>' if lead else ""
    return f'<section class="card" id="{e(sid)}"><h2>{e(title)}</h2>{lead_html}{body}</section>'


def _compute(data: ReportData, charts: dict[str, Chart]) -> str:
    body = []
    s = data.summary
    body.append(_figure(charts.get("params-by-layer"),
                        "Blue: trainable, orange: non-trainable parameters."))
    body.append(_figure(charts.get("macs-by-layer"),
                        "Multiply-accumulates for one sample (batch 1); element-wise layers count 0."))
    body.append(_figure(charts.get("by-type"), "Each layer type summed; ×N is how many layers of the type."))
    body.append(_figure(charts.get("split")))
    body.append(_figure(charts.get("profile"), "Every layer in graph order: where depth holds the weights "
                                               "and spends the compute."))
    if not charts:
        body.append('<p class="empty">Charts need matplotlib: <code>pip install \'dl-inspector[report]\'</code>.</p>')
    rows = []
    for t in data.by_type:
        rows.append(f"<tr><td><code>{e(t.type)}</code></td><td class=num>{t.count:,}</td>"
                    f"<td class=num>{t.params:,}</td>"
                    f"<td class=num>{percent(t.params, s.totals.params, empty='0.0%')}</td>"
                    f"<td class=num>{t.macs:,}{'+' if t.macs_unknown else ''}</td>"
                    f"<td class=num>{percent(t.macs, s.macs_total, empty='0.0%')}</td></tr>")
    body.append("<h3>By layer type</h3><div class=tablebox><table><thead><tr><th>Type</th><th class=num>Layers"
                "</th><th class=num>Params</th><th class=num>Share</th><th class=num>MACs</th>"
                "<th class=num>Share</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>")
    return _section("compute", "Parameters and compute", "Where the parameters live and where inference "
                    "spends its multiply-accumulates.", "".join(body))


TABLE_PAGE = 1000
"""Layers the table shows at once.  A graph with more has its rows in a JSON block that the page's script shows a
page at a time, filter included: 162,000 rows laid out in the page took a browser minutes to open.  The first
page is written as HTML too, for a reader without scripts."""


def _paged(rows: list[str], searches: list[str]) -> tuple[str, str, str]:
    """The pager, the JSON block of every row (its search text and its HTML) and the note of a table longer than
    :data:`TABLE_PAGE`.  ``<`` is written as ``\\u003c`` in the block, so no text in it can end the element."""
    block = json.dumps([[q, r] for q, r in zip(searches, rows, strict=True)], ensure_ascii=False,
                       separators=(",", ":")).replace("<", "\\u003c")
    pager = (f'<span class="pager"><button type="button" id="layer-prev">‹ Previous</button>'
             f'<span class="hint" id="layer-page">rows 1–{TABLE_PAGE}</span>'
             f'<button type="button" id="layer-next">Next ›</button></span>')
    data = f'<script type="application/json" id="layer-rows" data-page="{TABLE_PAGE}">{block}</script>'
    note = (f'<p class="note">{len(rows):,} layers, shown {TABLE_PAGE:,} at a time (the page\'s script turns the '
            f"pages and filters them all); without scripts, the first {TABLE_PAGE:,}. "
            "<code>inspector summary</code> lists every layer.</p>")
    return pager, data, note


def _layers(data: ReportData) -> str:
    s = data.summary
    peak_p = max((r.params.params for r in s.rows), default=0) or 1
    peak_m = max((r.macs or 0 for r in s.rows), default=0) or 1
    show_conn = not s.sequential_like
    head = ("<tr><th class=num>#</th><th>Layer</th><th>Type</th><th>Output shape</th><th class=num>Params</th>"
            "<th class=num>Trainable</th><th class=num>MACs</th>" + ("<th>Connected to</th>" if show_conn else "")
            + "</tr>")
    paged = len(s.rows) > TABLE_PAGE  # then the script filters the rows in the data block: no search text in a row
    rows: list[str] = []
    searches: list[str] = []
    for i, r in enumerate(s.rows):
        shape = format_output(r.output_shapes, as_list=r.is_input, multiple=r.multiple_shapes)
        search = f"{r.name} {r.type} {shape}".lower()
        searches.append(search)
        bar_p = f' class="num bar" style="background-size:{percent(r.params.params, peak_p)} 100%"' \
            if r.params.params else " class=num"
        bar_m = f' class="num bar macs" style="background-size:{percent(r.macs or 0, peak_m)} 100%"' \
            if r.macs else " class=num"
        conn = ""
        if show_conn:
            conn = "<td>" + "<br>".join(f"<code>{e(c)}</code>" for c in r.connections) + "</td>"
        rows.append(("<tr>" if paged else f'<tr data-search="{e(search)}">')
                    + f"<td class=num>{i}</td><td><code>{e(r.name)}</code></td>"
                    f"<td>{e(r.type)}</td><td class=mono>{e(shape)}</td>"
                    f"<td{bar_p}>{r.params.params:,}</td><td class=num>{r.params.trainable:,}</td>"
                    f"<td{bar_m}>{number(r.macs)}</td>{conn}</tr>")
    t = s.totals
    foot = (f'<p class="note">Total params: {t.params:,} ({e(readable_size(t.bytes))}) · trainable {t.trainable:,}'
            f" · non-trainable {t.non_trainable:,}"
            + (f" · MACs {s.macs_total:,}" + ("" if s.macs_complete else " (lower bound)")
               if s.macs_total is not None else "") + "</p>")
    pager = block = ""
    if paged:
        pager, block, note = _paged(rows, searches)
        foot = note + foot
    tools = ('<div class="tools"><input type="search" id="layer-search" placeholder="Filter layers by name, type '
             f'or shape…" aria-label="Filter layers"><span class="hint" id="layer-count">{len(s.rows)} layers</span>'
             f"{pager}</div>")
    table = (f'<div class="tablebox"><table id="layer-table"><thead>{head}</thead><tbody>{"".join(rows[:TABLE_PAGE])}'
             f"</tbody></table></div>{block}")
    return _section("layers", "Layers", "The summary table, in graph order; the shading behind Params and MACs "
                    "is the share of the largest layer.", tools + table + foot)


def _weights(data: ReportData, charts: dict[str, Chart]) -> str:
    body = [_figure(charts.get("weights"), "Sampled evenly when a tensor holds more than a million values.")]
    if data.histograms:
        rows = []
        for h in data.histograms:
            rows.append(f"<tr><td><code>{e(h.layer)}</code></td><td>{e(h.role)}</td>"
                        f"<td class=mono>{e(format_shape(h.shape))}</td><td>{e(h.dtype)}</td>"
                        f"<td class=num>{short_float(h.minimum)}</td><td class=num>{short_float(h.maximum)}</td>"
                        f"<td class=num>{short_float(h.mean)}</td><td class=num>{short_float(h.std)}</td>"
                        f"<td class=num>{percent(h.zeros, h.sampled - h.nonfinite, empty='0.0%')}</td>"
                        f"<td class=num>{h.nonfinite:,}</td></tr>")
        body.append("<div class=tablebox><table><thead><tr><th>Layer</th><th>Tensor</th><th>Shape</th><th>dtype</th>"
                    "<th class=num>Min</th><th class=num>Max</th><th class=num>Mean</th><th class=num>Std</th>"
                    "<th class=num>Zeros</th><th class=num>Non-finite</th></tr></thead><tbody>"
                    + "".join(rows) + "</tbody></table></div>")
    else:
        body.append('<p class="empty">No weight values could be read for a histogram.</p>')
    if data.skipped_weights:
        body.append("<h3>Not drawn</h3><ul>" + "".join(f"<li><code>{e(n)}</code>: {e(why)}</li>"
                                                         for n, why in data.skipped_weights) + "</ul>")
    return _section("weights", "Weight distributions", "The values stored in the largest layers, one tensor read "
                    "at a time.", "".join(body))


def _findings(data: ReportData) -> str:
    if not data.lint_ran:
        why = data.lint_error or "lint was not run (--no-lint)."
        return _section("findings", "Findings", "", f'<p class="empty">{e(why)}</p>')
    counts = data.counts
    if not data.findings:
        body = '<div class="callout ok">All checks passed: no finding.</div>'
    else:
        badges = " ".join(f'<span class="badge {s}">{counts[s]} {s}{"s" if counts[s] != 1 else ""}</span>'
                          for s in SEVERITIES if counts.get(s))
        parts = [f'<div class="tools">{badges}<button class="link" type="button" data-toggle="findings">'
                 "Expand / collapse all</button></div>"]
        for sev in SEVERITIES:
            group = [f for f in data.findings if str(f.severity) == sev]
            if not group:
                continue
            items = []
            for f in group:
                if not f.layer:
                    where = "whole model"
                elif f.code.startswith("HIST") and str(f.layer).startswith("epoch "):
                    where = f"at {e(f.layer)} of the training log"
                else:
                    where = f"layer <code>{e(f.layer)}</code>"
                items.append(f'<div class="finding"><div><span class="code-pill {sev}">{e(f.code)}</span></div>'
                             f'<div><div class="where">{e(f.name)} · {where}</div>'
                             f'<div class="msg">{e(f.message)}</div></div></div>')
            is_open = " open" if sev != "info" or len(group) <= 8 else ""
            title = f"{len(group)} {sev}{'s' if len(group) != 1 else ''}"
            parts.append(f'<details class="group"{is_open}><summary><span class="badge {sev}">{e(title)}</span>'
                         f"</summary><div class=body>{''.join(items)}</div></details>")
        docs = []
        for r in data.rules:
            n = sum(1 for f in data.findings if f.code == r.code)
            docs.append(f'<details class="group" id="rule-{e(r.code)}"><summary><span class="code-pill '
                        f'{e(r.severity.value)}">{e(r.code)}</span> {e(r.name)}<span class="note">'
                        f"{n} finding{'s' if n != 1 else ''}</span></summary><div class=body><div class=ruledoc>"
                        f"{doc_html(r.doc)}</div></div></details>")
        parts.append("<h3>Rule documentation</h3>" + "".join(docs))
        body = "".join(parts)
    return _section("findings", "Findings", "Lint findings grouped by severity; each rule's documentation below "
                    "says what it checks, why it matters and how to fix it.", body)


# -- dynamic sections (probe, history) ----------------------------------------------------------------


def _probe(data: ReportData, charts: dict[str, Chart]) -> str:
    rows = data.probe.rows if data.probe else ()
    body = [_figure(charts.get("probe"), "Saturated: units whose pre-activations sit where the derivative is "
                                         "below 1% of its maximum for most values. Dead: ReLU-family units that "
                                         "never fire over the batch. Dashed: 50%, the ACT003/ACT004 default.")]
    if rows:
        trs = []
        for r in rows:
            trs.append(f"<tr><td><code>{e(r.layer)}</code></td><td>{e(r.activation)}</td>"
                       f"<td class=num>{r.units:,}</td><td class=num>{fraction(r.saturated)}</td>"
                       f"<td class=num>{fraction(r.saturated_units)}</td><td class=num>{fraction(r.dead)}</td>"
                       f"<td class=num>{short_float(r.mean)}</td><td class=num>{short_float(r.std)}</td>"
                       f"<td class=num>{'' if r.nonfinite is None else f'{r.nonfinite:,}'}</td></tr>")
        body.append("<div class=tablebox><table><thead><tr><th>Layer</th><th>Activation</th><th class=num>Units</th>"
                    "<th class=num>Saturated values</th><th class=num>Saturated units</th><th class=num>Dead units"
                    "</th><th class=num>Mean</th><th class=num>Std</th><th class=num>Non-finite</th></tr></thead>"
                    "<tbody>" + "".join(trs) + "</tbody></table></div>")
    else:
        body.append('<p class="empty">The probe measured no activation layer.</p>')
    for note in data.probe.notes if data.probe else ():
        body.append(f'<p class="note">{e(note)}</p>')
    return _section("probe", "Activation probe", "Measured by running the model on a batch.", "".join(body))


def _history(data: ReportData, facts: HistoryView, charts: dict[str, Chart]) -> str:
    body = [_figure(charts.get("history"), "Solid: training, dashed: validation; shaded from the overfitting "
                                           "onset; circles: spikes.")]
    items = []
    if facts.source:
        items.append(("Log", f"<code>{e(facts.source)}</code>"))
    items.append(("Epochs", e(epochs_text(facts.epochs))))
    if facts.onset is not None:
        items.append(("Overfitting from epoch", e(facts.onset)))
    if facts.spikes:
        items.append(("Spikes at epochs", e(", ".join(str(s) for s in facts.spikes)
                                            + (f" ({facts.spike_metric})" if facts.spike_metric else ""))))
    if facts.best is not None:
        items.append(("Best validation epoch", e(facts.best)))
    body.append('<table class="kv">' + "".join(f"<tr><th>{e(k)}</th><td>{v}</td></tr>" for k, v in items)
                + "</table>")
    hist_findings = [f for f in data.findings if f.code.startswith("HIST")]
    if hist_findings:
        body.append("<ul>" + "".join(f'<li><span class="code-pill {e(str(f.severity))}">{e(f.code)}</span> '
                                     f"{e(f.message)}</li>" for f in hist_findings) + "</ul>")
    return _section("history", "Training history", "The curves of the training log, with what the HIST rules "
                    "found marked on them.", "".join(body))


# -- the page -----------------------------------------------------------------------------------------


def render(data: ReportData, *, graph: ModelGraph | None = None, charts: Iterable[Chart] = ()) -> str:
    """The whole HTML page.  ``charts`` are SVG charts (see
    :func:`inspector.reporters.charts.model_charts`); ``graph`` adds the
    architecture strip."""
    data = scrub(data)  # names from the file: control and bidi characters as escapes, on one line
    by_key = {c.key: c for c in charts}
    s = data.summary
    counts = data.counts
    nav = [("overview", "Model", ""), ("compute", "Compute", ""), ("layers", "Layers", f"{len(s.rows):,}"),
           ("weights", "Weights", "")]
    nav.append(("findings", "Findings", f"{len(data.findings)}" if data.lint_ran else ""))
    sections = [_overview(data, graph), _compute(data, by_key), _layers(data), _weights(data, by_key),
                _findings(data)]
    if data.probe is not None:
        nav.append(("probe", "Probe", ""))
        sections.append(_probe(data, by_key))
    if data.history is not None:
        nav.append(("history", "History", ""))
        sections.append(_history(data, data.history, by_key))
    nav_html = "".join(f'<a href="#{sid}">{e(label)}' + (f'<span class="count">{e(c)}</span>' if c else "") + "</a>"
                       for sid, label, c in nav)
    if data.lint_ran:
        badges = "".join(f'<span class="badge {sev}">{counts[sev]} {sev}{"s" if counts[sev] != 1 else ""}</span>'
                         for sev in SEVERITIES if counts.get(sev))
        if not data.findings:
            badges = '<span class="badge ok">no findings</span>'
    else:
        badges = ""
    fmt = str(data.card.doc["model"]["format"])
    sub = (f"<code>{e(data.file_name)}</code> · {e(fmt)} · {e(count_text(s.totals.params))} parameters"
           + (f" · {e(count_text(s.macs_total))} MACs" if s.macs_total else ""))
    script = JS.strip()
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    csp = (f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'sha256-{digest}'; "
           "base-uri 'none'; form-action 'none'")
    title = f"{s.name} — inspector report"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f'<meta http-equiv="Content-Security-Policy" content="{e(csp)}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="inspector {e(__version__)}">\n'
        f"<title>{e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f'<header class="top"><div class="wrap"><h1>{e(s.name)}</h1><div class="sub">{sub}</div>'
        f'<div class="badges">{badges}</div></div></header>\n'
        f'<nav class="toc"><div class="wrap">{nav_html}</div></nav>\n'
        f'<main class="wrap">\n' + "\n".join(sections) + "\n</main>\n"
        f"<footer>{e(written_by(data))} Self-contained: this page loads nothing from the network.</footer>\n"
        f"<script>{script}</script>\n</body>\n</html>\n"
    )

