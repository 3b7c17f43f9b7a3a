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


def _line_format(stops: Sequence[int]) -> str:
    """A ``str.format`` pattern writing one line of fields at ``stops``: each field cut to its column
    (precision) and padded, every column but the last giving its last character to a space."""
    parts, start = [], 0
    for i, stop in enumerate(stops):
        width = stop - start
        keep = width if i == len(stops) - 1 else width - 1
        parts.append(f"{{:<{width}.{keep}}}")
        start = stop
    return "".join(parts)


def _row(fields: Sequence[str], stops: Sequence[int]) -> str:
    """One line: the fields written at their column stops (see the module docstring)."""
    return _line_format(stops).format(*fields)


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


def _rows(out: list[str], rows: Sequence[SummaryRow], line: str, length: int, *, macs: bool, wide: bool) -> None:
    """Append the layer lines to ``out``: ``line`` is :func:`_line_format`'s pattern; a shape cell is
    written once per shape tuple (rows share equal shapes), each line by one ``str.format``."""
    write = line.format
    between, last = "_" * length, "=" * length
    shape_cells: dict[int, str] = {}
    blank = ("",) * (4 if macs else 3)
    append = out.append
    for row in rows:
        shapes = row.output_shapes
        shape: str | None
        if row.is_input or row.multiple_shapes:
            shape = _shape_cell(row)
        elif (shape := shape_cells.get(id(shapes))) is None:
            shape = shape_cells[id(shapes)] = format_output(shapes)
        fields = (f"{row.name} ({row.type})", shape, str(row.params.params)) + ((_macs_cell(row),) if macs else ())
        conns = row.connections
        if not wide:
            append(write(*fields))
        elif len(conns) <= 1:
            append(write(*fields, str(conns[0]) if conns else ""))
        else:
            append(write(*fields, str(conns[0])))
            out.extend([write(*blank, str(c)) for c in conns[1:]])
        append(between)
    if rows:
        out[-1] = last


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
    _rows(out, summary.rows, _line_format(stops), length, macs=macs, wide=wide)
    if not summary.rows:
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
    out.append("")  # the final newline, without copying the whole listing once more
    return "\n".join(out)
