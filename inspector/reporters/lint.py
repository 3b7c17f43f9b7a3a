"""The lint output formats: one ``{name: render}`` registry, the only list of their names.

``--output-format`` choices, the ``output-format`` configuration key and the
error for an unknown name all read :data:`FORMATS`.  Each entry adapts the
shared :class:`LintOutput` options to one reporter module, imported on use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

from ..errors import UsageError
from ..findings import ModelReport
from ..textsafe import scrub

if TYPE_CHECKING:  # pragma: no cover
    from ..rules.registry import Rule


@dataclass(frozen=True)
class LintOutput:
    """What a lint format may use besides the reports."""

    rules: Sequence[Rule] = ()
    """The rules that ran (SARIF describes them)."""
    fail_on: str = "error"
    """Lowest failing severity (JUnit marks those findings as failures)."""
    statistics: bool = False
    """Text: add the number of findings per rule."""
    color: bool = False
    """Text: ANSI colours."""


def _text(reports: Sequence[ModelReport], out: LintOutput) -> str:
    from . import lint_text

    return lint_text.render(reports, statistics=out.statistics, color=out.color)


def _json(reports: Sequence[ModelReport], out: LintOutput) -> str:
    from . import lint_json

    return lint_json.render(reports)


def _sarif(reports: Sequence[ModelReport], out: LintOutput) -> str:
    from . import sarif

    return sarif.render(reports, rules=out.rules)


def _junit(reports: Sequence[ModelReport], out: LintOutput) -> str:
    from . import junit

    return junit.render(reports, fail_on=out.fail_on)


def _github(reports: Sequence[ModelReport], out: LintOutput) -> str:
    from . import github

    return github.render(reports)


RENDERERS: dict[str, Callable[[Sequence[ModelReport], LintOutput], str]] = {
    "text": _text, "json": _json, "sarif": _sarif, "junit": _junit, "github": _github,
}
FORMATS: tuple[str, ...] = tuple(RENDERERS)
PLAIN_JSON = frozenset({"json"})
"""Formats that keep names as they are (JSON escapes control characters itself)."""


def render(reports: Sequence[ModelReport], *, fmt: str = "text", rules: Sequence[Rule] = (),
           fail_on: str = "error", statistics: bool = False, color: bool = False) -> str:
    """Format lint results as ``fmt``.  ``rules`` are the rules that ran (SARIF lists them)."""
    try:
        renderer = RENDERERS[fmt]
    except KeyError:
        raise UsageError(f"unknown output format {fmt!r}: choose one of {', '.join(FORMATS)}") from None
    if fmt not in PLAIN_JSON:  # names and messages come from the model file: no raw control characters
        reports = scrub(reports)
    return renderer(reports, LintOutput(rules=rules, fail_on=fail_on, statistics=statistics, color=color))
