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


class _ShapeCells:
    """Output Shape cells, each shape tuple written once: rows share equal shapes (a 162,000-node graph
    has a few dozen distinct ones)."""

    def __init__(self) -> None:
        self._cells: dict[int, str] = {}  # by id: the rows keep their tuples alive while the listing is made

    def __call__(self, row: SummaryRow) -> str:
        if row.is_input or row.multiple_shapes:
            return _shape_cell(row)
        shapes = row.output_shapes
        cell = self._cells.get(id(shapes))
        if cell is None:
            cell = self._cells[id(shapes)] = format_output(shapes)
        return cell


def _macs_stops(summary: Summary, headers: Sequence[str], keras_stops: Sequence[int],
                line_length: int | None, shape_cell: _ShapeCells, macs_cells: Sequence[str]) -> list[float]:
    """Absolute column stops for the listing with a MACs column: no cell is ever cut."""
    base = list(pairwise([0, *keras_stops]))
    widths = [b - a for a, b in base]
    widths.insert(3, 12)  # MACs
    rows = summary.rows
    cells = [map(_type_label, rows), map(shape_cell, rows), (str(r.params.params) for r in rows), macs_cells]
    if len(headers) == 5:
        cells.append(str(c) for r in rows for c in r.connections)
    longest = [max(map(len, column), default=0) for column in cells]
    for i, n in enumerate(longest):
        widths[i] = max(widths[i], len(headers[i]) + 1, n + 1)
    if line_length is not None and line_length > sum(widths):
        widths[-1] += line_length - sum(widths)
    stops, at = [], 0
    for w in widths:
        at += w
        stops.append(float(at))
    return stops


def _rows(out: list[str], rows: Sequence[SummaryRow], line: str, length: int, *, macs: Sequence[str] | None,
          wide: bool, shape_cell: _ShapeCells) -> None:
    """Append the layer lines to ``out``, each written by one ``str.format`` of ``line``
    (:func:`_line_format`'s pattern); ``macs``: the MACs cells, row by row, when the listing has them."""
    write = line.format
    between, last = "_" * length, "=" * length
    blank = ("",) * (3 if macs is None else 4)
    append = out.append
    for i, row in enumerate(rows):
        fields: tuple[str, ...] = (f"{row.name} ({row.type})", shape_cell(row), str(row.params.params))
        if macs is not None:
            fields += (macs[i],)
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
    shape_cell = _ShapeCells()
    macs_cells = [_macs_cell(r) for r in summary.rows] if macs else None
    if macs:
        # One more column before Connected to (or at the end): MACs.  The line widens instead
        # of cutting names: each column is as wide as Keras makes it, or its longest cell + 1.
        headers.insert(3, "MACs")
        if positions is None:
            keras_stops = _stops(default_length, default_positions)
            pos = _macs_stops(summary, headers, keras_stops, line_length, shape_cell, macs_cells or [])
            length = int(pos[-1])
    if len(pos) != len(headers):
        raise UsageError(f"--positions needs {len(headers)} values for this model, got {len(pos)}")
    stops = _stops(length, pos)
    if any(b <= a for a, b in pairwise(stops)) or stops[0] <= 0:
        raise UsageError("--positions must increase and lie within the line length")

    out = [f'Model: "{summary.name}"', "_" * length, _row(headers, stops), "=" * length]
    _rows(out, summary.rows, _line_format(stops), length, macs=macs_cells, wide=wide, shape_cell=shape_cell)
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
