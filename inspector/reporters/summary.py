"""The summary table formats: a ``{name: render}`` registry plus tabulate's table formats.

The same format names serve ``inspector summary`` and ``inspector probe``
(:func:`formats`, :func:`check_format`); :data:`RENDERERS` picks the summary
reporter for a name, any other valid name is a tabulate table format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence, TypedDict

from ..errors import UsageError
from ..ir import ModelGraph

if TYPE_CHECKING:  # pragma: no cover
    from ..analysis.summary import Summary


@dataclass(frozen=True)
class SummaryOutput:
    """What a summary format may use besides the summary."""

    fmt: str
    macs: bool = False
    line_length: int | None = None
    positions: Sequence[float] | None = None
    compact: bool = False


class SummaryOptions(TypedDict, total=False):
    """The keyword options of :func:`render` besides ``fmt`` (``inspector.summarize`` passes them on)."""

    macs: bool
    line_length: int | None
    positions: Sequence[float] | None
    compact: bool


def _classic(summary: Summary, out: SummaryOutput) -> str:
    from . import classic

    return classic.render(summary, line_length=out.line_length, positions=out.positions, macs=out.macs)


def _keras3(summary: Summary, out: SummaryOutput) -> str:
    from . import keras3

    return keras3.render(summary, line_length=out.line_length, positions=out.positions, macs=out.macs)


def _json(summary: Summary, out: SummaryOutput) -> str:
    from . import summary_json

    return summary_json.render(summary, indent=None if out.compact else 2)


def _csv(summary: Summary, out: SummaryOutput) -> str:
    from . import table

    return table.render_csv(summary, macs=out.macs)


def _tabulate(summary: Summary, out: SummaryOutput) -> str:
    from . import table

    return table.render(summary, fmt=out.fmt, macs=out.macs)


RENDERERS: dict[str, Callable[[Summary, SummaryOutput], str]] = {"classic": _classic, "keras3": _keras3,
                                                                  "json": _json, "csv": _csv}
"""The formats of inspector's own; every other format name is one of tabulate's."""
LINE_FORMATS = frozenset({"json", "csv"})
"""Formats that print several models without a blank line between them (JSON Lines, CSV rows)."""


def formats() -> list[str]:
    """Every summary format name: classic, keras3, json, csv and tabulate's table formats."""
    from tabulate import tabulate_formats

    return list(RENDERERS) + sorted(tabulate_formats)


def check_format(fmt: str) -> None:
    """A :class:`UsageError` naming every format unless ``fmt`` is one."""
    if fmt not in RENDERERS and fmt not in formats():  # inspector's own formats need no tabulate (~10 ms)
        raise UsageError(f"unknown format {fmt!r}: choose one of {', '.join(formats())}")


def streams_as_lines(fmt: str) -> bool:
    """Whether outputs for several models follow each other without a blank line."""
    return fmt in LINE_FORMATS


def render(graph: ModelGraph, *, fmt: str = "classic", macs: bool = False,
           line_length: int | None = None, positions: Sequence[float] | None = None,
           compact: bool = False) -> str:
    """Format ``graph`` as ``fmt``; ``compact`` puts a JSON document on one line."""
    from ..analysis.summary import summarize
    from ..textsafe import clean_lines, scrub

    check_format(fmt)
    summary = summarize(graph, macs=macs or fmt == "json", duplicates=fmt == "json")
    out = SummaryOutput(fmt=fmt, macs=macs, line_length=line_length, positions=positions, compact=compact)
    if fmt == "classic":  # cells cut to a prefix or shown whole: clean lines are the scrubbed summary's
        from . import classic

        text, lines = classic.listing(summary, line_length=line_length, positions=positions, macs=macs)
        if clean_lines(text, lines):
            return text
    if fmt != "json":  # JSON escapes control characters itself; text formats show them as escapes
        summary = scrub(summary)
    return RENDERERS.get(fmt, _tabulate)(summary, out)
