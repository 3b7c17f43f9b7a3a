"""Pick the lint reporter for an ``--output-format`` name."""

from __future__ import annotations

from typing import Sequence

from ..errors import UsageError
from ..rules.engine import ModelReport, Rule, Severity

FORMATS = ("text", "json", "sarif", "junit", "github")


def fails(severity: Severity, fail_on: str) -> bool:
    """Whether a finding of ``severity`` fails the run under ``--fail-on``."""
    return fail_on != "never" and severity.rank >= Severity.parse(fail_on).rank


def counts(reports: Sequence[ModelReport]) -> dict[str, int]:
    """Findings per severity, most severe first (the JSON ``counts`` object)."""
    out = {"error": 0, "warning": 0, "info": 0}
    for r in reports:
        for f in r.findings:
            out[f.severity.value] += 1
    return out


def render(reports: Sequence[ModelReport], *, fmt: str = "text", rules: Sequence[Rule] = (),
           fail_on: str = "error", statistics: bool = False, color: bool = False) -> str:
    """Format lint results.  ``rules`` are the rules that ran (SARIF lists them)."""
    if fmt == "text":
        from . import lint_text

        return lint_text.render(reports, statistics=statistics, color=color)
    if fmt == "json":
        from . import lint_json

        return lint_json.render(reports)
    if fmt == "sarif":
        from . import sarif

        return sarif.render(reports, rules=rules)
    if fmt == "junit":
        from . import junit

        return junit.render(reports, fail_on=fail_on)
    if fmt == "github":
        from . import github

        return github.render(reports)
    raise UsageError(f"unknown output format {fmt!r}: choose one of {', '.join(FORMATS)}")
