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

from itertools import compress, islice, pairwise, repeat
from typing import Callable, Iterable, Sequence, TypeVar

from ..analysis.params import ParamCount
from ..analysis.summary import Summary, SummaryRows
from ..errors import UsageError
from ..shapetext import format_output
from ..units import readable_size
from .macs_text import macs_cell, total_macs

T = TypeVar("T")

NARROW = (65, (0.45, 0.85, 1.0))
WIDE = (98, (0.33, 0.55, 0.67, 1.0))


def _stops(line_length: int, positions: Sequence[float]) -> list[int]:
    if positions[-1] <= 1:
        return [int(line_length * p) for p in positions]
    return [int(p) for p in positions]


def _line_format(stops: Sequence[int]) -> str:
    """A ``%`` pattern writing one line of fields at ``stops``: each field cut to its column (precision) and
    padded, every column but the last giving its last character to a space.  (``%`` rather than ``str.format``:
    a third faster on 162,000 lines.)"""
    return "".join(_fields(stops))


def _fields(stops: Sequence[int]) -> list[str]:
    """The ``%`` conversion of each field of :func:`_line_format`."""
    parts, start = [], 0
    for i, stop in enumerate(stops):
        width = stop - start
        keep = width if i == len(stops) - 1 else width - 1
        parts.append(f"%-{width}.{keep}s")
        start = stop
    return parts


def _row(fields: Sequence[str], stops: Sequence[int]) -> str:
    """One line: the fields written at their column stops (see the module docstring)."""
    return _line_format(stops) % tuple(fields)


def _shape_cells(rows: SummaryRows) -> list[str]:
    """The Output Shape column, each shape tuple written once: rows share equal shapes (a 162,000-node graph
    has a few dozen distinct ones); an input layer's (a list of one tuple) and a shared layer's
    (``multiple``) written row by row."""
    shapes = rows.output_shapes
    cells = _each_once(shapes, format_output)
    for i, (kind, multiple) in enumerate(zip(rows.types, rows.multiple_shapes, strict=True)):
        if multiple or kind == "InputLayer":
            cells[i] = format_output(shapes[i], as_list=kind == "InputLayer", multiple=multiple)
    return cells


def _params_cells(counts: Sequence[ParamCount]) -> list[str]:
    """The Param # column: rows share count objects (most layers of an ONNX graph hold
    :data:`~inspector.analysis.params.NONE`, the others one of a few counts)."""
    return _each_once(counts, lambda count: str(count.params))


def _each_once(values: Sequence[T], write: Callable[[T], str]) -> list[str]:
    """``write`` of each of ``values``, called once per distinct object (rows share them: 162,000 rows of
    a decoder hold a few dozen shapes and counts)."""
    ids = list(map(id, values))
    text = {key: write(value) for key, value in dict(zip(ids, values, strict=True)).items()}
    return list(map(text.__getitem__, ids))


def _columns(rows: SummaryRows, macs: bool) -> list[list[str]]:
    """The cells of the columns before Connected to: Layer (type), Output Shape, Param # (and MACs)."""
    # An f-string rather than ``"{} ({})".format`` (parsed again for each of 162,000 rows: a third slower).
    columns = [[f"{name} ({kind})" for name, kind in zip(rows.names, rows.types, strict=True)], _shape_cells(rows),
               _params_cells(rows.params)]
    if macs:
        columns.append(list(map(macs_cell, rows.macs, rows.macs_formulas, repeat(str))))
    return columns


def _macs_stops(rows: SummaryRows, headers: Sequence[str], keras_stops: Sequence[int],
                line_length: int | None, columns: Sequence[Sequence[str]]) -> list[float]:
    """Absolute column stops for the listing with a MACs column: no cell is ever cut."""
    base = list(pairwise([0, *keras_stops]))
    widths = [b - a for a, b in base]
    widths.insert(3, 12)  # MACs
    cells: list[Iterable[str]] = list(columns)
    if len(headers) == 5:
        cells.append(str(c) for conns in rows.connections for c in conns)
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


def _body(rows: SummaryRows, columns: Sequence[Sequence[str]], stops: Sequence[int], *,
          wide: bool) -> tuple[list[str], int]:
    """The layers' lines, one text per layer (its further connections on lines of their own under its line,
    joined to it), each line written by one ``%`` of :func:`_line_format`'s pattern from the cells of
    ``columns`` and, ``wide``, the first connection; and the number of lines they hold.  The caller joins
    them with the ``_`` line between layers: no list of the 373,000 lines of a 162,000-layer listing."""
    write = _line_format(stops).__mod__
    conns = rows.connections
    if not wide:
        return list(map(write, zip(*columns, strict=True))), len(conns)
    texts = list(map(write, zip(*columns, [str(c[0]) if c else "" for c in conns], strict=True)))
    several = list(compress(range(len(conns)), map((1).__lt__, map(len, conns))))
    # The further connections of every layer at once, then each layer's joined to its line.
    further = [c for i in several for c in conns[i][1:]]
    lines = iter(map(("\n" + " " * stops[-2] + _fields(stops)[-1]).__mod__, map(str, further)))
    for i in several:
        more = len(conns[i]) - 1
        texts[i] += next(lines) if more == 1 else "".join(islice(lines, more))
    return texts, len(conns) + len(further)


def render(summary: Summary, *, line_length: int | None = None,
           positions: Sequence[float] | None = None, macs: bool = False) -> str:
    """The listing as one string ending in a newline."""
    return listing(summary, line_length=line_length, positions=positions, macs=macs)[0]


def listing(summary: Summary, *, line_length: int | None = None,
            positions: Sequence[float] | None = None, macs: bool = False) -> tuple[str, int]:
    """The listing as one string ending in a newline, and the number of lines it writes: a line break
    beyond those is a name's (:func:`render` escapes none; :func:`inspector.textsafe.clean_lines` tells)."""
    wide = not summary.sequential_like
    default_length, default_positions = WIDE if wide else NARROW
    length = line_length or default_length
    pos = list(positions or default_positions)
    headers = ["Layer (type)", "Output Shape", "Param #"] + (["Connected to"] if wide else [])
    columns = _columns(summary.rows, macs)
    if macs:
        # One more column before Connected to (or at the end): MACs.  The line widens instead
        # of cutting names: each column is as wide as Keras makes it, or its longest cell + 1.
        headers.insert(3, "MACs")
        if positions is None:
            keras_stops = _stops(default_length, default_positions)
            pos = _macs_stops(summary.rows, headers, keras_stops, line_length, columns)
            length = int(pos[-1])
    if len(pos) != len(headers):
        raise UsageError(f"--positions needs {len(headers)} values for this model, got {len(pos)}")
    stops = _stops(length, pos)
    if any(b <= a for a, b in pairwise(stops)) or stops[0] <= 0:
        raise UsageError("--positions must increase and lie within the line length")

    head = [f'Model: "{summary.name}"', "_" * length, _row(headers, stops), "=" * length]
    texts, count = _body(summary.rows, columns, stops, wide=wide)
    foot = ["=" * length, *_foot(summary, length, macs)]
    if not texts:
        return "\n".join([*head, *foot, ""]), len(head) + len(foot)
    # The first layer's text carries the head, the last one's the foot: the listing is joined once (37 MB for
    # 162,000 layers), with the ``_`` line between layers as the separator.
    texts[0] = "\n".join([*head, texts[0]])
    texts[-1] = "\n".join([texts[-1], *foot, ""])
    return f"\n{'_' * length}\n".join(texts), len(head) + count + len(texts) - 1 + len(foot)


def _foot(summary: Summary, length: int, macs: bool) -> list[str]:
    """The lines after the layers' closing ``=`` line: totals, notes, the security warning."""
    t = summary.totals
    out = [f"Total params: {t.params:,}", f"Trainable params: {t.trainable:,}",
           f"Non-trainable params: {t.non_trainable:,}"]
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
    return out
