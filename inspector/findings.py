"""Lint results: severities, findings and per-file reports, independent of the rule engine.

Everything that *consumes* lint results (reporters, baselines, ``diff``, the
report page) imports from here, never from :mod:`inspector.rules.engine`, so
formatting and storing findings does not pull in the rules.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Sequence

from .errors import UsageError

LOG_FORMAT = "history"
"""The ``format`` of a report on a training log (``inspector history``, ``lint --history``) rather than a model."""


class Severity(str, enum.Enum):
    """How bad a finding is.  Ordered: ``info < warning < error``."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        """0 for info, 1 for warning, 2 for error."""
        return _RANK[self]

    @classmethod
    def parse(cls, value: str | Severity) -> Severity:
        """``value`` as a severity (case-insensitive), or a :class:`UsageError`."""
        try:
            return cls(str(value.value if isinstance(value, Severity) else value).lower())
        except ValueError:
            raise UsageError(
                f"unknown severity {value!r}: choose one of error, warning, info") from None

    def __str__(self) -> str:  # "error", not "Severity.ERROR"
        return self.value


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}

SEVERITIES: tuple[str, ...] = ("error", "warning", "info")
"""Severity names, most severe first."""
FAIL_ON: tuple[str, ...] = (*SEVERITIES, "never")
"""The values of ``--fail-on`` and ``fail-on``: a severity, or ``never``."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found in one model.

    ``layer`` is the layer's path in the graph (``outer/inner/dense`` for nested
    models) or ``None`` for a finding about the whole model; ``path`` is the model
    file the finding is about (``None`` when linting an in-memory graph).
    """

    code: str
    name: str
    severity: Severity
    message: str
    layer: str | None = None
    path: str | None = None


@dataclass(frozen=True)
class ModelReport:
    """The lint result for one model file, as reporters receive it."""

    path: str
    name: str | None = None
    format: str | None = None
    findings: tuple[Finding, ...] = ()
    suppressed: int = 0
    """Findings the baseline accepted (not in ``findings``)."""
    error: str | None = None
    """Why the file could not be linted (then ``findings`` is empty)."""


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
