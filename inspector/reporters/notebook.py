"""HTML tables for Jupyter (``_repr_html_`` of the Python API's results, :mod:`inspector.api`).

Plain ``<table>`` markup with no script and no style sheet, so a notebook shows it
as it shows a pandas frame; every value from the model file is escaped.
"""

from __future__ import annotations

from html import escape
from typing import Iterable, Sequence

from ..analysis.summary import Summary
from ..findings import ModelReport
from ..shapetext import format_output
from ..textsafe import visible
from ..units import number, readable_size
from .macs_text import total_macs


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], *, caption: str) -> str:
    """An HTML table; ``head`` and the cells are plain text (escaped here)."""
    out = [f"<table><caption>{escape(caption)}</caption>", "<thead><tr>"]
    out += [f"<th>{escape(h)}</th>" for h in head]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{escape(visible(cell))}</td>" for cell in row) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def summary_html(summary: Summary) -> str:
    """The summary as one table (layer, type, output shape, parameters, MACs) plus its totals."""
    macs = summary.macs_total is not None or any(r.macs is not None for r in summary.rows)
    head = ["Layer", "Type", "Output Shape", "Param #"] + (["MACs"] if macs else [])
    rows = []
    for r in summary.rows:
        row = [r.name, r.type, format_output(r.output_shapes, as_list=r.is_input, multiple=r.multiple_shapes),
               number(r.params.params)]
        rows.append(row + ([number(r.macs)] if macs else []))
    t = summary.totals
    totals = [f"Total params: {number(t.params)} ({readable_size(t.bytes)})",
              f"Trainable params: {number(t.trainable)}", f"Non-trainable params: {number(t.non_trainable)}"]
    if macs and summary.macs_formula is not None:
        totals.append(f"MACs: {total_macs(summary)}")
    elif macs and summary.macs_total is not None:
        totals.append(f"MACs: {number(summary.macs_total)}{'' if summary.macs_complete else ' (known layers)'}")
    warning = summary.security_warning
    foot = "".join(f"<p>{escape(line)}</p>" for line in totals + ([warning] if warning else []))
    caption = f'Model: "{summary.name}" ({summary.format})'
    return _table(head, rows, caption=caption) + foot


def lint_html(report: ModelReport) -> str:
    """The findings of one model as a table (code, severity, location, message)."""
    caption = f"{report.name or report.path}: " + (
        f"{len(report.findings)} finding{'' if len(report.findings) == 1 else 's'}" if report.findings
        else "no findings")
    rows = [(f.code, f.severity.value, f.layer or "(model)", f.message) for f in report.findings]
    return _table(["Code", "Severity", "Location", "Message"], rows, caption=caption)
