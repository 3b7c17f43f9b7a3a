"""Summary tables in any tabulate format (``github``, ``grid``, ``simple`` …) and CSV.

Unlike ``classic`` these never cut a cell: names and shapes print in full.  Every
table ends with the totals and the parameter memory by dtype.
"""

from __future__ import annotations

import csv
import io

from ..analysis.summary import Summary, SummaryRow
from ..shapetext import format_output
from ..textsafe import csv_row
from ..units import readable_size as human_bytes
from .macs_text import layer_macs, total_macs


def _shape(row: SummaryRow) -> str:
    return format_output(row.output_shapes, as_list=row.is_input, multiple=row.multiple_shapes)


def _columns(summary: Summary, macs: bool) -> list[str]:
    cols = ["Layer", "Type", "Output Shape", "Param #", "Trainable"]
    if macs:
        cols.append("MACs")
    if not summary.sequential_like:
        cols.append("Connected to")
    return cols


def _cells(summary: Summary, row: SummaryRow, macs: bool, *, sep: str = "\n") -> list[str]:
    cells = [row.name, row.type, _shape(row), f"{row.params.params:,}", f"{row.params.trainable:,}"]
    if macs:
        cells.append(layer_macs(row))
    if not summary.sequential_like:
        cells.append(sep.join(str(c) for c in row.connections))
    return cells


def footer_lines(summary: Summary, *, macs: bool) -> list[str]:
    t = summary.totals
    lines = [
        f"Model: {summary.name} ({summary.format})",
        f"Total params: {t.params:,} ({human_bytes(t.bytes)})",
        f"Trainable params: {t.trainable:,}",
        f"Non-trainable params: {t.non_trainable:,}",
    ]
    if summary.optimizer.params:
        lines.append(f"Optimizer params (not counted above): {summary.optimizer.params:,} "
                     f"({human_bytes(summary.optimizer.bytes)})")
    if summary.quantization.params:
        lines.append(f"Quantization scales and zero points (not counted above): "
                     f"{summary.quantization.params:,} ({human_bytes(summary.quantization.bytes)})")
    if summary.constants.params:
        lines.append(f"Constants: scalars, masks, ids (not counted above): "
                     f"{summary.constants.params:,} ({human_bytes(summary.constants.bytes)})")
    if macs:
        lines.append(f"Total MACs: {total_macs(summary)}")
    return lines


def render(summary: Summary, *, fmt: str, macs: bool = False) -> str:
    from tabulate import tabulate

    cols = _columns(summary, macs)
    body = [_cells(summary, row, macs) for row in summary.rows]
    right = {"Param #", "Trainable", "MACs"}
    colalign = tuple("right" if c in right else "left" for c in cols)
    out = [tabulate(body, headers=cols, tablefmt=fmt, colalign=colalign, disable_numparse=True)]
    out.append("")
    out.extend(footer_lines(summary, macs=macs))
    out.append("")
    out.append("Parameter memory by dtype:")
    mem = [(d, f"{n:,}", f"{b:,}", human_bytes(b)) for d, n, b in summary.bytes_by_dtype]
    out.append(tabulate(mem, headers=["dtype", "params", "bytes", "size"], tablefmt=fmt,
                        colalign=("left", "right", "right", "right"), disable_numparse=True))
    out.extend(f"Note: {note}" for note in summary.notes)
    if summary.security_warning:
        out.append(summary.security_warning)
    return "\n".join(out) + "\n"


def render_csv(summary: Summary, *, macs: bool = False) -> str:
    """A rectangular CSV: one row per layer, then one ``(total)`` row and one
    ``(dtype X)`` row per dtype, so spreadsheet and pandas readers take it whole."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    header = ["layer", "type", "output_shape", "params", "trainable_params", "non_trainable_params",
              "bytes", "connected_to"]
    if macs:
        header.append("macs")
    w.writerow(header)

    def tail(m: int | None) -> list[str]:
        return (["" if m is None else str(m)]) if macs else []

    for row in summary.rows:
        p = row.params
        w.writerow(csv_row([row.name, row.type, _shape(row), p.params, p.trainable, p.non_trainable, p.bytes,
                            " ".join(str(c) for c in row.connections)] + tail(row.macs)))
    t = summary.totals
    w.writerow(["(total)", "", "", t.params, t.trainable, t.non_trainable, t.bytes, ""] + tail(summary.macs_total))
    for dtype, n, b in summary.bytes_by_dtype:
        w.writerow(csv_row([f"(dtype {dtype})", "", "", n, "", "", b, ""] + tail(None)))
    return buf.getvalue()
