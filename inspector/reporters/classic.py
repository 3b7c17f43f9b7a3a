"""The classic Keras 2 ``model.summary()`` listing, byte for byte.

This is the listing of the Keras releases before 2.7 (cells are cut to their
column, not wrapped).  Facts of the format (reference listings: ``tests/golden/*_keras2_summary.txt``):

* a model that is not sequential-like gets four columns (``Layer (type)``,
  ``Output Shape``, ``Param #``, ``Connected to``), 98 characters, stops at
  ``.33/.55/.67/1.0``; a sequential-like one three columns, 65 characters, stops
  at ``.45/.85/1.0``;
* each field is written, cut at its column stop, and the last character before
  the next field is replaced by a space; lines are padded to the full width;
* an InputLayer's shape prints as a list of one tuple; a layer whose calls have
  several inbound tensors prints each further connection on a row of its own;
* ``_`` lines separate layers and a ``=`` line closes the last one; totals use
  thousands separators and are not padded.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Sequence

from ..analysis.summary import Summary, SummaryRow
from ..errors import UsageError
from ..shapetext import format_output
from ..units import readable_size
from .macs_text import layer_macs, total_macs

NARROW = (65, (0.45, 0.85, 1.0))
WIDE = (98, (0.33, 0.55, 0.67, 1.0))


def _stops(line_length: int, positions: Sequence[float]) -> list[int]:
    if positions[-1] <= 1:
        return [int(line_length * p) for p in positions]
    return [int(p) for p in positions]


def _row(fields: Sequence[str], stops: Sequence[int]) -> str:
    line = ""
    for i, field in enumerate(fields):
        if i > 0:
            line = line[:-1] + " "
        line += str(field)
        line = line[: stops[i]]
        line += " " * (stops[i] - len(line))
    return line


def _type_label(row: SummaryRow) -> str:
    return f"{row.name} ({row.type})"


def _shape_cell(row: SummaryRow) -> str:
    return format_output(row.output_shapes, as_list=row.is_input, multiple=row.multiple_shapes)


def _macs_cell(row: SummaryRow) -> str:
    return layer_macs(row, str)


def _macs_stops(summary: Summary, headers: Sequence[str], keras_stops: Sequence[int],
                line_length: int | None) -> list[float]:
    """Absolute column stops for the listing with a MACs column: no cell is ever cut."""
    base = list(pairwise([0, *keras_stops]))
    widths = [b - a for a, b in base]
    widths.insert(3, 12)  # MACs
    columns: list[list[str]] = [[_type_label(r) for r in summary.rows], [_shape_cell(r) for r in summary.rows],
                                [str(r.params.params) for r in summary.rows], [_macs_cell(r) for r in summary.rows]]
    if len(headers) == 5:
        columns.append([str(c) for r in summary.rows for c in r.connections])
    for i, cells in enumerate(columns):
        widths[i] = max([widths[i], len(headers[i]) + 1] + [len(c) + 1 for c in cells])
    if line_length is not None and line_length > sum(widths):
        widths[-1] += line_length - sum(widths)
    stops, at = [], 0
    for w in widths:
        at += w
        stops.append(float(at))
    return stops


def render(summary: Summary, *, line_length: int | None = None,
           positions: Sequence[float] | None = None, macs: bool = False) -> str:
    """The listing as one string ending in a newline."""
    wide = not summary.sequential_like
    default_length, default_positions = WIDE if wide else NARROW
    length = line_length or default_length
    pos = list(positions or default_positions)
    headers = ["Layer (type)", "Output Shape", "Param #"] + (["Connected to"] if wide else [])
    if macs:
        # One more column before Connected to (or at the end): MACs.  The line widens instead
        # of cutting names: each column is as wide as Keras makes it, or its longest cell + 1.
        headers.insert(3, "MACs")
        if positions is None:
            pos = _macs_stops(summary, headers, _stops(default_length, default_positions), line_length)
            length = int(pos[-1])
    if len(pos) != len(headers):
        raise UsageError(f"--positions needs {len(headers)} values for this model, got {len(pos)}")
    stops = _stops(length, pos)
    if any(b <= a for a, b in pairwise(stops)) or stops[0] <= 0:
        raise UsageError("--positions must increase and lie within the line length")

    out = [f'Model: "{summary.name}"', "_" * length, _row(headers, stops), "=" * length]
    n = len(summary.rows)
    for i, row in enumerate(summary.rows):
        fields = [_type_label(row), _shape_cell(row), str(row.params.params)]
        if macs:
            fields.append(_macs_cell(row))
        if wide:
            conns = [str(c) for c in row.connections]
            out.append(_row(fields + [conns[0] if conns else ""], stops))
            blank = [""] * len(fields)
            out.extend(_row(blank + [c], stops) for c in conns[1:])
        else:
            out.append(_row(fields, stops))
        out.append(("=" if i == n - 1 else "_") * length)
    if n == 0:
        out.append("=" * length)
    t = summary.totals
    out.append(f"Total params: {t.params:,}")
    out.append(f"Trainable params: {t.trainable:,}")
    out.append(f"Non-trainable params: {t.non_trainable:,}")
    if summary.optimizer.params:
        out.append(f"Optimizer params: {summary.optimizer.params:,} (stored with the model, not counted above)")
    if summary.quantization.params:
        out.append(f"Quantization params: {summary.quantization.params:,} (scales and zero points, not counted above)")
    if summary.constants.params:
        out.append(f"Constants: {summary.constants.params:,} ({readable_size(summary.constants.bytes)}; "
                   "scalars, masks, ids: not counted above)")
    if macs:
        out.append(f"Total MACs: {total_macs(summary)}")
    out.append("_" * length)
    out.extend(f"Note: {note}" for note in summary.notes)
    if summary.security_warning:
        out.append(summary.security_warning)
    return "\n".join(out) + "\n"
