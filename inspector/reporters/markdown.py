"""The Markdown model report: for a pull-request comment or a CI job summary.

Same sections as the HTML report, as GitHub-flavoured Markdown tables, plus a
Mermaid diagram of the architecture (collapsed to blocks for big models, see
:mod:`inspector.reporters.mermaid`).  Charts are image files beside the report
(``report_files/params-by-layer.png``), linked relatively; written to standard
output the report has no images.  Long tables sit in ``<details>`` blocks so a
comment stays short.

Text from the model file is hostile: names, types and shapes are put in code
spans (:func:`md_code`, which also escapes table pipes), free text such as
finding messages has every Markdown punctuation character backslash-escaped
(:func:`md_text`), so no name can open a link, an image, raw HTML or a table
cell.  Output contains no time stamp and no folder, so a report can be a
golden file and two runs on the same model compare equal.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from ..analysis.card import CardRow, TensorRow, report_identity
from ..shapetext import format_output, format_shape
from ..textsafe import scrub, visible
from ..units import count_text, fraction, number, percent, readable_size, short_float
from .macs_text import total_macs
from .report_text import SEVERITIES, epochs_text, written_by

if TYPE_CHECKING:  # pragma: no cover
    from ..analysis.report import HistoryView, ReportData
    from ..ir import ModelGraph
    from .charts import Chart

MAX_TABLE_ROWS = 400
"""Layer-table rows shown; a bigger model's table ends with a count of the rest."""

_CONTROL = re.compile(r"[\t\n\r\x0b\x0c]")
_PUNCT = re.compile(r"([\\`*_{}\[\]<>#!|~&$])")
_LEADING = re.compile(r"^(\s*)([-+=>]|\d+[.)](?=\s|$))")


def _flat(value: Any) -> str:
    """``value`` as one line: line breaks and tabs become spaces, other control and bidi characters escapes."""
    return visible(_CONTROL.sub(" ", str(value)))


def md_text(value: Any) -> str:
    """Free text safe in Markdown (and in a table cell), on one line: every character
    that can start markup (emphasis, code, links, images, raw HTML, entities, math,
    tables, headings) is backslash-escaped."""
    flat = _PUNCT.sub(r"\\\1", _flat(value))
    # A leading "-", "+", "=", ">" or "1." would start a list, heading underline or quote.
    def guard(m: re.Match[str]) -> str:
        mark = m.group(2)
        return m.group(1) + (mark[:-1] + "\\" + mark[-1] if mark[0].isdigit() else "\\" + mark)

    return _LEADING.sub(guard, flat, count=1)


def md_code(value: Any, *, table: bool = True) -> str:
    """A code span holding ``value`` verbatim (longer fence when it holds backticks;
    pipes escaped for tables, as GFM requires even inside code)."""
    flat = _flat(value)
    if not flat:
        return "*(empty)*"
    longest = max((len(m) for m in re.findall(r"`+", flat)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") or (flat.startswith(" ") and flat.endswith(" ")) else ""
    body = flat.replace("|", "\\|") if table else flat
    return f"{fence}{pad}{body}{pad}{fence}"


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], align: str = "") -> list[str]:
    """A GFM table; ``align`` has one letter per column: l or r."""
    align = align or "l" * len(head)
    sep = ["---:" if a == "r" else "---" for a in align]
    out = ["| " + " | ".join(head) + " |", "| " + " | ".join(sep) + " |"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _pct(part: int, whole: int | None) -> str:
    return percent(part, whole, floor=0.05)


def _image(chart: Chart | None, image_dir: str | None) -> list[str]:
    if chart is None or image_dir is None:
        return []
    return [f"![{md_text(chart.title)}]({image_dir}/{chart.key}.{chart.fmt})", ""]


# -- sections -------------------------------------------------------------------------------------------


def _card_cell(row: CardRow) -> str:
    return md_code(row.value) if row.code else md_text(row.value)


def _tensors(items: Sequence[TensorRow]) -> str:
    cells = [f"{md_code(t.name)} {md_text(t.dtype)} {md_code(t.shape)}" for t in items]
    return "<br>".join(cells) if cells else "none"


def _card(data: ReportData) -> list[str]:
    card = data.card
    s = data.summary
    rows: list[tuple[str, str]] = [("File", md_code(data.file_name))]
    rows += [(r.label, _card_cell(r)) for r in report_identity(card)]
    rows += [("Inputs", _tensors(card.inputs)), ("Outputs", _tensors(card.outputs))]
    rows += [(r.label, _card_cell(r)) for r in card.amounts]
    rows += [(f"Metadata: {md_text(k)}", md_text(v)) for k, v in card.metadata_props]
    if s.macs_formula is not None:
        rows.append(("MACs per sample", md_text(total_macs(s))))
    elif s.macs_total is not None:
        rows.append(("MACs per sample", f"{s.macs_total:,}" + ("" if s.macs_complete else " (lower bound)")))
    rows.append(("Layers", f"{len(s.rows):,}"))
    out = ["## Model card", ""]
    if s.security_warning:
        out += ["> [!CAUTION]", f"> {md_text(s.security_warning)}", ""]
    out += _table(["", ""], [(f"**{k}**", v) for k, v in rows])
    out.append("")
    return out


def _architecture(graph: ModelGraph | None, max_nodes: int | None) -> list[str]:
    if graph is None:
        return []
    from ..analysis.diagram import diagram
    from .mermaid import caption, render

    d = diagram(graph, max_nodes=max_nodes)
    return ["## Architecture", "", "```mermaid", render(graph, drawn=d).rstrip("\n"), "```", "",
            f"*{md_text(caption(graph, drawn=d))}*", ""]


def _compute(data: ReportData, charts: dict[str, Chart], image_dir: str | None) -> list[str]:
    s = data.summary
    out = ["## Parameters and compute", ""]
    out += _image(charts.get("params-by-layer"), image_dir)
    rows: list[tuple[str, ...]] = []
    for r in data.top_params:
        rows.append((md_code(r.name), md_code(r.type), f"{r.params:,}", _pct(r.params, s.totals.params),
                     number(r.macs), _pct(r.macs or 0, s.macs_total)))
    if data.other_params is not None:
        o = data.other_params
        rows.append((f"*{o.layers} other layers*", "", f"{o.params:,}", _pct(o.params, s.totals.params), "", ""))
    if rows:
        out += [f"Largest layers by parameters (top {len(data.top_params)}):", ""]
        out += _table(["Layer", "Type", "Params", "Share", "MACs", "Share"], rows, "llrrrr")
        out.append("")
    out += _image(charts.get("macs-by-layer"), image_dir)
    if data.top_macs:
        rows = [(md_code(r.name), md_code(r.type), number(r.macs), _pct(r.macs or 0, s.macs_total))
                for r in data.top_macs]
        if data.other_macs is not None:
            o = data.other_macs
            rows.append((f"*{o.layers} other layers*", "", f"{o.macs:,}", _pct(o.macs, s.macs_total)))
        out += [f"Largest layers by MACs (top {len(data.top_macs)}):", ""]
        out += _table(["Layer", "Type", "MACs", "Share"], rows, "llrr")
        out.append("")
    out += _image(charts.get("by-type"), image_dir)
    rows = [(md_code(t.type), f"{t.count:,}", f"{t.params:,}", _pct(t.params, s.totals.params),
             f"{t.macs:,}" + ("+" if t.macs_unknown else ""), _pct(t.macs, s.macs_total)) for t in data.by_type]
    out += ["By layer type:", ""]
    out += _table(["Type", "Layers", "Params", "Share", "MACs", "Share"], rows, "lrrrrr")
    out.append("")
    out += _image(charts.get("split"), image_dir)
    out += _image(charts.get("profile"), image_dir)
    return out


def _layers(data: ReportData) -> list[str]:
    s = data.summary
    conn = not s.sequential_like
    head = ["#", "Layer", "Type", "Output shape", "Params", "Trainable", "MACs"] + (["Connected to"] if conn else [])
    rows = []
    for i, r in enumerate(s.rows[:MAX_TABLE_ROWS]):
        shape = format_output(r.output_shapes, as_list=r.is_input, multiple=r.multiple_shapes)
        cells = [str(i), md_code(r.name), md_code(r.type), md_code(shape), f"{r.params.params:,}",
                 f"{r.params.trainable:,}", number(r.macs)]
        if conn:
            cells.append("<br>".join(md_code(c) for c in r.connections))
        rows.append(cells)
    out = ["## Layers", "", "<details>", f"<summary>{len(s.rows):,} layers (click to expand)</summary>", ""]
    out += _table(head, rows, "rllrrrr" + ("l" if conn else ""))
    if len(s.rows) > MAX_TABLE_ROWS:
        out += ["", f"*… and {len(s.rows) - MAX_TABLE_ROWS:,} more layers (see `inspector summary`).*"]
    t = s.totals
    out += ["", "</details>", "",
            f"Total params: {t.params:,} ({readable_size(t.bytes)}) · trainable {t.trainable:,} · "
            f"non-trainable {t.non_trainable:,}", ""]
    return out


def _weights(data: ReportData, charts: dict[str, Chart], image_dir: str | None) -> list[str]:
    out = ["## Weight distributions", ""]
    out += _image(charts.get("weights"), image_dir)
    if data.histograms:
        rows = []
        for h in data.histograms:
            valid = h.sampled - h.nonfinite
            rows.append((md_code(h.layer), md_text(h.role), md_code(format_shape(h.shape)), md_text(h.dtype),
                         short_float(h.minimum), short_float(h.maximum), short_float(h.mean), short_float(h.std),
                         _pct(h.zeros, valid) or "0.0%", f"{h.nonfinite:,}"))
        out += _table(["Layer", "Tensor", "Shape", "dtype", "Min", "Max", "Mean", "Std", "Zeros", "Non-finite"],
                      rows, "llllrrrrrr")
        out.append("")
        if any(h.sampled < h.size for h in data.histograms):
            out += ["*Tensors above a million values are sampled evenly.*", ""]
    else:
        out += ["No weight values could be read for a histogram.", ""]
    if data.skipped_weights:
        out += ["Not drawn:", ""] + [f"- {md_code(n, table=False)}: {md_text(why)}" for n, why in data.skipped_weights]
        out.append("")
    return out


def _doc_md(doc: str) -> list[str]:
    """A rule docstring with its ``##`` headings turned into bold lines (so they do
    not break the report's outline)."""
    out = []
    fenced = False
    for line in doc.splitlines():
        if line.strip().startswith("```"):
            fenced = not fenced
            out.append(line)
        elif not fenced and line.lstrip().startswith("#"):
            out.append(f"**{line.strip().lstrip('#').strip()}**")
        else:
            out.append(line)
    return out


def _findings(data: ReportData) -> list[str]:
    out = ["## Findings", ""]
    if not data.lint_ran:
        out += [md_text(data.lint_error or "Lint was not run (--no-lint)."), ""]
        return out
    if not data.findings:
        return out + ["All checks passed: no finding.", ""]
    counts = data.counts
    out += [" · ".join(f"**{counts[s]}** {s}{'s' if counts[s] != 1 else ''}" for s in SEVERITIES), ""]
    titles = {"error": "Errors", "warning": "Warnings", "info": "Info"}
    for sev in SEVERITIES:
        group = [f for f in data.findings if str(f.severity) == sev]
        if not group:
            continue
        rows = [(f"`{f.code}`", md_code(f.layer) if f.layer else "*model*", md_text(f.message)) for f in group]
        out += [f"### {titles[sev]} ({len(group)})", ""]
        out += _table(["Rule", "Layer", "Message"], rows)
        out.append("")
    out += ["<details>", "<summary>Rule documentation</summary>", ""]
    for r in data.rules:
        out += [f"#### {r.code} {r.name} ({r.severity.value})", ""] + _doc_md(r.doc) + [""]
    out += ["</details>", ""]
    return out


def _probe(data: ReportData, charts: dict[str, Chart], image_dir: str | None) -> list[str]:
    out = ["## Activation probe", ""]
    out += _image(charts.get("probe"), image_dir)
    rows = data.probe.rows if data.probe else ()
    if rows:
        out += _table(["Layer", "Activation", "Units", "Saturated values", "Saturated units", "Dead units", "Mean",
                       "Std", "Non-finite"],
                      [(md_code(r.layer), md_text(r.activation), f"{r.units:,}", fraction(r.saturated),
                        fraction(r.saturated_units), fraction(r.dead), short_float(r.mean), short_float(r.std),
                        "" if r.nonfinite is None else f"{r.nonfinite:,}") for r in rows], "llrrrrrrr")
        out.append("")
    else:
        out += ["The probe measured no activation layer.", ""]
    for note in data.probe.notes if data.probe else ():
        out += [md_text(note), ""]
    return out


def _history(data: ReportData, facts: HistoryView, charts: dict[str, Chart], image_dir: str | None) -> list[str]:
    out = ["## Training history", ""]
    out += _image(charts.get("history"), image_dir)
    rows = [("Log", md_code(facts.source))] if facts.source else []
    rows.append(("Epochs", epochs_text(facts.epochs)))
    if facts.onset is not None:
        rows.append(("Overfitting from epoch", str(facts.onset)))
    if facts.spikes:
        rows.append(("Spikes at epochs", ", ".join(str(s) for s in facts.spikes)
                     + (f" ({md_text(facts.spike_metric)})" if facts.spike_metric else "")))
    if facts.best is not None:
        rows.append(("Best validation epoch", str(facts.best)))
    out += _table(["", ""], [(f"**{k}**", v) for k, v in rows])
    out.append("")
    hist = [f for f in data.findings if f.code.startswith("HIST")]
    out += [f"- `{f.code}` {md_text(f.message)}" for f in hist]
    if hist:
        out.append("")
    return out


def render(data: ReportData, *, graph: ModelGraph | None = None, charts: Iterable[Chart] = (),
           image_dir: str | None = None, max_nodes: int | None = 60) -> str:
    """The whole Markdown report.  ``image_dir`` is the folder (relative to the
    report) the chart files were written to; ``None`` leaves images out."""
    data = scrub(data)  # names from the file: control and bidi characters as escapes, on one line
    by_key = {c.key: c for c in charts}
    s = data.summary
    head = [md_code(data.file_name, table=False), md_text(str(data.card.doc["model"]["format"])),
            f"{count_text(s.totals.params)} parameters"]
    if s.macs_total:
        head.append(f"{count_text(s.macs_total)} MACs")
    if data.lint_ran:
        c = data.counts
        head.append(", ".join(f"{c[x]} {x}{'s' if c[x] != 1 else ''}" for x in SEVERITIES))
    out = [f"# Model report: {md_code(s.name, table=False)}", "", " · ".join(head), ""]
    out += _card(data)
    out += _architecture(graph, max_nodes)
    out += _compute(data, by_key, image_dir)
    out += _layers(data)
    out += _weights(data, by_key, image_dir)
    out += _findings(data)
    if data.probe is not None:
        out += _probe(data, by_key, image_dir)
    if data.history is not None:
        out += _history(data, data.history, by_key, image_dir)
    out += ["---", f"*{written_by(data)}*", ""]
    return "\n".join(out)
