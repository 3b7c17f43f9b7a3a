"""Human-readable lint output, like ruff's: one ``path:layer: CODE [severity] message``
line per finding, then a summary line."""

from __future__ import annotations

from collections import Counter
from typing import Sequence

from ..findings import LOG_FORMAT, Finding, ModelReport

_COLORS = {"error": "\033[1;31m", "warning": "\033[1;33m", "info": "\033[36m"}
_BOLD, _RESET = "\033[1m", "\033[0m"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _subjects(reports: Sequence[ModelReport]) -> str:
    """What ``reports`` are about, counted: models, training logs (``inspector history``), or both."""
    logs = sum(1 for r in reports if r.format == LOG_FORMAT)
    models = len(reports) - logs
    if not logs:
        return _plural(models, "model")
    if not models:
        return _plural(logs, "training log")
    return f"{_plural(models, 'model')} and {_plural(logs, 'training log')}"


def line(report: ModelReport, f: Finding, *, color: bool = False) -> str:
    where = f"{report.path}:{f.layer}" if f.layer else report.path
    code = f.code
    sev = f"[{f.severity.value}]"
    if color:
        where = f"{_BOLD}{where}{_RESET}"
        code = f"{_COLORS[f.severity.value]}{code}{_RESET}"
    return f"{where}: {code} {sev} {f.message}"


def render(reports: Sequence[ModelReport], *, statistics: bool = False, color: bool = False) -> str:
    lines: list[str] = []
    for report in reports:
        for f in report.findings:
            lines.append(line(report, f, color=color))
    findings = [f for r in reports for f in r.findings]
    by_sev = Counter(f.severity.value for f in findings)
    if statistics and findings:
        if lines:
            lines.append("")
        per_code = Counter((f.code, f.name, f.severity.value) for f in findings)
        for (code, name, sev), n in sorted(per_code.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"{n:>5}  {code:<9} [{sev}] {name}")
    linted = [r for r in reports if r.error is None]
    failed = len(reports) - len(linted)
    suppressed = sum(r.suppressed for r in reports)
    models = _subjects(linted)
    if findings:
        parts = [_plural(by_sev[s], s) for s in ("error", "warning", "info") if by_sev[s]]
        summary = f"Found {_plural(len(findings), 'finding')} ({', '.join(parts)}) in {models}."
    elif linted:
        summary = f"All checks passed ({models})."
    else:
        what = "training log" if reports and all(r.format == LOG_FORMAT for r in reports) else "model"
        summary = f"No {what} was linted."
    extra = []
    if suppressed:
        extra.append(f"{suppressed} suppressed by the baseline")
    if failed:
        extra.append(f"{_plural(failed, 'file')} could not be read")
    if extra:
        summary = summary[:-1] + f"; {'; '.join(extra)}."
    if lines:
        lines.append("")
    lines.append(summary)
    return "\n".join(lines) + "\n"
