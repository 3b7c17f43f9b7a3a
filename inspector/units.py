"""How numbers read in every report: sizes and counts (Keras's style: 1024-based, two decimals),
thousands-separated integers, percentages and short floats.  Every reporter, and the analyses that write
prose (model card, graph facts), format through these; the module sits outside ``reporters/`` so that
``analysis/`` need not import a reporter."""

from __future__ import annotations

import math


def readable_size(n: int | float | None) -> str:
    """Bytes in Keras's style: 1024-based, two decimals (``97.80 MB``)."""
    if n is None:
        return "?"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{int(value)} B" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1024
    return f"{value:.2f} TB"  # pragma: no cover


def bytes_text(size: int) -> str:
    """A byte count, readable and exact: ``94.94 KB (97,215 bytes)``."""
    return f"{readable_size(size)} ({size:,} bytes)"


_DECIMAL_UNITS = (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3))


def count_text(n: int) -> str:
    """A count with a decimal unit: ``15.75 K``, ``4.09 G``."""
    for unit, scale in _DECIMAL_UNITS:
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return str(n)


def compact_count(value: float) -> str:
    """A count as short as a chart axis wants it: ``250K``, ``1.5M``, ``4G``."""
    for unit, scale in _DECIMAL_UNITS:
        if abs(value) >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:g}"


def number(n: int | None, *, unknown: str = "?") -> str:
    """An integer with thousands separators (``unknown`` when there is none)."""
    return unknown if n is None else f"{n:,}"


def signed(n: int | None) -> str:
    """A change with its sign and thousands separators (``+1,024``, ``-3``, ``0``; ``?`` unknown)."""
    if n is None:
        return "?"
    return f"+{n:,}" if n > 0 else f"{n:,}" if n < 0 else "0"


def relative_change(before: int | None, after: int | None) -> str:
    """`` (+12.5%)``: how much ``after`` differs from ``before`` ("" when unknown or unchanged)."""
    if before is None or before == 0 or after is None or before == after:
        return ""
    return f" ({100.0 * (after - before) / before:+.1f}%)"


def percent(part: float, whole: float | None, *, floor: float = 0.0, cap: bool = False, empty: str = "") -> str:
    """``part`` as a share of ``whole`` with one decimal (``12.5%``).

    ``empty`` when ``whole`` is missing or not positive; a non-zero share below
    ``floor`` reads ``<0.1%``; with ``cap`` a share that rounds to 100% without
    being all of it reads ``>99.9%``.
    """
    if whole is None or whole <= 0:
        return empty
    share = 100.0 * part / whole
    if cap and part != whole and share >= 99.95:
        return ">99.9%"
    return f"{share:.1f}%" if share >= floor or share == 0 else "<0.1%"


def fraction(value: float | None, *, missing: str = "") -> str:
    """A 0..1 share as a percentage with one decimal (``missing`` for ``None``)."""
    return missing if value is None else f"{100 * value:.1f}%"


def short_float(value: float | None, *, missing: str = "", nan: str | None = None) -> str:
    """A measured value with four significant digits (``missing`` for ``None``;
    ``nan``, when given, for NaN)."""
    if value is None:
        return missing
    if nan is not None and isinstance(value, float) and math.isnan(value):
        return nan
    return f"{value:.4g}"


def is_number(text: str) -> bool:
    """Does ``text`` read as a number (``float()`` accepts it: ``-1.5``, ``1e3``, ``nan``)?"""
    try:
        float(text)
    except ValueError:
        return False
    return True
