"""Pick the summary reporter for a format name."""

from __future__ import annotations

from typing import Sequence

from ..errors import UsageError
from ..ir import ModelGraph

SPECIAL = ("classic", "json", "csv")


def formats() -> list[str]:
    """Every summary format name: classic, json, csv and tabulate's table formats."""
    from tabulate import tabulate_formats

    return list(SPECIAL) + sorted(tabulate_formats)


def check_format(fmt: str) -> None:
    if fmt not in formats():
        raise UsageError(f"unknown format {fmt!r}: choose one of {', '.join(formats())}")


def render(graph: ModelGraph, *, fmt: str = "classic", macs: bool = False,
           line_length: int | None = None, positions: Sequence[float] | None = None,
           compact: bool = False) -> str:
    """Format ``graph`` as ``fmt``; ``compact`` puts a JSON document on one line."""
    from ..analysis.summary import summarize

    check_format(fmt)
    summary = summarize(graph, macs=macs or fmt == "json")
    if fmt == "classic":
        from . import classic

        return classic.render(summary, line_length=line_length, positions=positions, macs=macs)
    if fmt == "json":
        from . import summary_json

        return summary_json.render(summary, indent=None if compact else 2)
    from . import table

    if fmt == "csv":
        return table.render_csv(summary, macs=macs)
    return table.render(summary, fmt=fmt, macs=macs)
