"""Keras 3's ``model.summary()`` table, byte for byte (``inspector summary -f keras3``).

Keras 3 draws the summary with rich: a box-drawn table (rich's ``HEAVY_HEAD`` box, a
line between rows) and three totals lines with their memory.  Facts of the format
(``keras/src/utils/summary_utils.py`` of Keras 3.15 and the rich 13-15 table it renders
through; tests/test_summary_keras3.py compares with Keras's own output):

* a sequential-like model gets ``Layer (type)``, ``Output Shape``, ``Param #`` (right
  aligned), 88 characters, stops at ``.45/.80/1.0``; any other model adds
  ``Connected to``, 108 characters, stops at ``.30/.56/.74/1.0``;
* each column is ``int(stop * length)`` minus the previous stop wide; rich then takes
  ``3 * columns + 1`` characters back for borders and padding, spread over the columns
  from the left by rounding (rich's ``ratio_reduce``);
* cells wrap at spaces; a word longer than its cell ends in ``…``; shapes print as
  tuples (an InputLayer too; a shared layer: its last call's), parameter counts with
  thousands separators, the inbound tensors of a layer in one cell, comma separated
  (``-`` for none);
* the totals follow as `` Total params: 15,750 (61.52 KB)`` (total, trainable,
  non-trainable, and optimizer state when the file stores some), memory 1024-based
  with two decimals.

Keras picks the line length from the terminal (at most 88/108 columns); inspector uses
88/108 unless ``--line-length`` says otherwise, so the output does not depend on the
terminal.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence

from ..analysis.summary import Summary, SummaryRow
from ..errors import UsageError
from ..shapetext import format_output
from .macs_text import layer_macs, total_macs

SEQUENTIAL = (88, (0.45, 0.80, 1.0))
FUNCTIONAL = (108, (0.30, 0.56, 0.74, 1.0))
MACS_WIDTH = 14
"""Width of the MACs column ``--macs`` adds before ``Connected to`` (Keras has none)."""
ELLIPSIS = "…"


@dataclass(frozen=True)
class _Column:
    header: str
    width: int
    """Cell width without rich's one-space padding on each side."""
    right: bool


def memory(n: float) -> str:
    """Bytes as Keras 3 prints them: 1024-based, two decimals, ``24.00 B``."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n / 1024 < 1:
            return f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} PB"


def _ratio_reduce(total: int, values: Sequence[int]) -> list[int]:
    """rich's ``ratio_reduce`` with equal ratios: take ``total`` from ``values``, left first."""
    out, remaining, ratio = [], total, len(values)
    for value in values:
        taken = min(value, round(remaining / ratio))
        out.append(value - taken)
        remaining -= taken
        ratio -= 1
    return out


def _ratio_distribute(total: int, values: Sequence[int]) -> list[int]:
    """rich's ``ratio_distribute``: add ``total`` to ``values`` in proportion to them, left first."""
    out, remaining, ratio = [], total, sum(values)
    for value in values:
        given = math.ceil(value * remaining / ratio) if ratio > 0 else remaining
        out.append(value + given)
        ratio -= value
        remaining -= given
    return out


def _widths(length: int, positions: Sequence[float]) -> list[int]:
    """Cell widths of a table ``length`` characters wide with column stops at ``positions``."""
    stops = [int(p * length) if p <= 1 else int(p) for p in positions]
    widths = [b - a for a, b in zip([0, *stops], stops, strict=False)]
    if any(w < 4 for w in widths):
        raise UsageError("--line-length/--positions leave a keras3 column narrower than 4 characters")
    padded = [w + 2 for w in widths]
    room = length - len(widths) - 1  # rich's table: the borders take columns + 1
    if sum(padded) > room:
        padded = _ratio_reduce(sum(padded) - room, padded)
    elif sum(padded) < room:
        padded = _ratio_distribute(room - sum(padded), padded)
    return [w - 2 for w in padded]


def _wrap(text: str, width: int) -> list[str]:
    """rich's word wrap (``divide_line`` without folding, then ``…`` truncation)."""
    if len(text) <= width and text and not text.isspace():
        return [text]  # what the words give when they all fit: one line, the text itself
    return _wrap_words(text, width)


def _wrap_words(text: str, width: int) -> list[str]:
    """:func:`_wrap` word by word."""
    lines: list[str] = []
    line = ""
    for word in _words(text):
        bare = len(word.rstrip())
        if len(line) + bare <= width or not line:
            line += word
        else:
            lines.append(line)
            line = word
    lines.append(line)
    out = []
    for chunk in lines:
        if len(chunk) > width:
            chunk = chunk.rstrip() if len(chunk.rstrip()) <= width else chunk[: width - 1] + ELLIPSIS
        out.append(chunk)
    return out


def _words(text: str) -> list[str]:
    """Words with the spaces after them (leading spaces stay with the first word)."""
    return re.findall(r"\s*\S+\s*", text) or [""]


def _cell_lines(text: str, column: _Column) -> list[str]:
    lines = _wrap(text, column.width)
    if column.right:
        return [line.rstrip().rjust(column.width) for line in lines]
    return [line.ljust(column.width) for line in lines]


def _row_lines(cells: Sequence[str], columns: Sequence[_Column], bar: str, *, header: bool = False) -> list[str]:
    """One table row; a cell shorter than the row is padded below (the header row: above)."""
    wrapped = [_cell_lines(c, col) for c, col in zip(cells, columns, strict=True)]
    height = max(len(w) for w in wrapped)
    padded = []
    for w, col in zip(wrapped, columns, strict=True):
        fill = [" " * col.width] * (height - len(w))
        padded.append(fill + w if header else w + fill)
    return [bar + bar.join(f" {w[i]} " for w in padded) + bar for i in range(height)]


def _rule(columns: Sequence[_Column], left: str, fill: str, mid: str, right: str) -> str:
    return left + mid.join(fill * (c.width + 2) for c in columns) + right


def _columns(summary: Summary, *, macs: bool, line_length: int | None,
             positions: Sequence[float] | None) -> list[_Column]:
    wide = not summary.sequential_like
    default_length, default_positions = FUNCTIONAL if wide else SEQUENTIAL
    headers = ["Layer (type)", "Output Shape", "Param #"] + (["Connected to"] if wide else [])
    pos = list(positions or default_positions)
    if len(pos) != len(headers):
        raise UsageError(f"--positions needs {len(headers)} values for this model, got {len(pos)}")
    widths = _widths(line_length or default_length, pos)
    columns = [_Column(h, w, h == "Param #") for h, w in zip(headers, widths, strict=True)]
    if macs:
        columns.insert(3, _Column("MACs", MACS_WIDTH, True))
    return columns


def _cells(row: SummaryRow, *, wide: bool, macs: bool) -> list[str]:
    shapes = row.last_call_shapes if row.multiple_shapes else row.output_shapes
    cells = [f"{row.name} ({row.type})", format_output(shapes),
             f"{row.params.params:,}"]
    if macs:
        cells.append(layer_macs(row))
    if wide:
        cells.append(", ".join(str(c) for c in row.connections) or "-")
    return cells


def _trainable_bytes(summary: Summary) -> int:
    """Bytes of the trainable parameters: exact for one dtype, else summed over the layers' own weights."""
    t = summary.totals
    if len(summary.bytes_by_dtype) <= 1:
        return t.bytes * t.trainable // t.params if t.params else 0
    seen: set[str] = set()
    total = 0
    for row in summary.rows:
        for w in row.weights:
            if w.key not in seen and w.trainable and not w.quantization and not w.constant:
                seen.add(w.key)
                total += w.nbytes
    return total


def _totals(summary: Summary, *, macs: bool) -> list[str]:
    t, opt = summary.totals, summary.optimizer
    trainable_bytes = _trainable_bytes(summary)
    out = [f" Total params: {t.params + opt.params:,} ({memory(t.bytes + opt.bytes)})",
           f" Trainable params: {t.trainable:,} ({memory(trainable_bytes)})",
           f" Non-trainable params: {t.non_trainable:,} ({memory(t.bytes - trainable_bytes)})"]
    if opt.params:
        out.append(f" Optimizer params: {opt.params:,} ({memory(opt.bytes)})")
    if summary.quantization.params:
        out.append(f" Quantization params: {summary.quantization.params:,} (scales and zero points, "
                   "not counted above)")
    if summary.constants.params:
        out.append(f" Constants: {summary.constants.params:,} ({memory(summary.constants.bytes)}; "
                   "scalars, masks, ids: not counted above)")
    if macs:
        out.append(f" Total MACs: {total_macs(summary)}")
    return out


def render(summary: Summary, *, line_length: int | None = None,
           positions: Sequence[float] | None = None, macs: bool = False) -> str:
    """The table as one string ending in a newline."""
    wide = not summary.sequential_like
    columns = _columns(summary, macs=macs, line_length=line_length, positions=positions)
    out = [f'Model: "{summary.name}"', _rule(columns, "┏", "━", "┳", "┓")]
    out += _row_lines([c.header for c in columns], columns, "┃", header=True)
    out.append(_rule(columns, "┡", "━", "╇", "┩"))
    between = _rule(columns, "├", "─", "┼", "┤")
    for i, row in enumerate(summary.rows):
        if i:
            out.append(between)
        out += _row_lines(_cells(row, wide=wide, macs=macs), columns, "│")
    out.append(_rule(columns, "└", "─", "┴", "┘"))
    out += _totals(summary, macs=macs)
    out.extend(f"Note: {note}" for note in summary.notes)
    if summary.security_warning:
        out.append(summary.security_warning)
    return "\n".join(out) + "\n"
