"""How sizes and counts read in every text report (Keras's style: 1024-based, two decimals)."""

from __future__ import annotations


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


def count_text(n: int) -> str:
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return str(n)
