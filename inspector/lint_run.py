"""Use cases "lint model files" and "lint training logs", callable from Python.

:func:`lint_files` loads each model, lints it (optionally probing it first),
applies a baseline or records one, and lints a training log as one more file;
:func:`lint_logs` lints training logs alone.  Both return a :class:`LintRun`
(reports for a reporter, the exit code) and report a file that cannot be read on
one stderr line, then go on (:func:`inspector.batch.for_each_file`).

    >>> from inspector.config import load_config
    >>> run = lint_files(["model.keras"], config=load_config())
    >>> run.exit_code, [f.code for r in run.reports for f in r.findings]
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Iterable, Sequence

from .batch import for_each_file, load_graph
from .errors import FileError, InspectorError
from .findings import Finding, ModelReport, fails

if TYPE_CHECKING:  # pragma: no cover
    from .baseline import Baseline
    from .config import LintConfig
    from .probe_run import ProbeOptions
    from .rules.engine import Selection
    from .rules.registry import Rule


@dataclass(frozen=True)
class LintRun:
    """The outcome of linting several files."""

    reports: tuple[ModelReport, ...]
    """One per file, in the order given (a file that could not be read has ``error`` set)."""
    rules: tuple[Rule, ...]
    """The rules that ran (SARIF describes them)."""
    exit_code: int
    """0 clean, 1 a finding reaches ``fail_on``, 2 a file could not be read (the worst wins)."""
    baseline_written: int | None = None
    """Findings recorded by ``write_baseline`` (``None``: no baseline was written)."""


def history_report(path: str, *, config: LintConfig | None, select: Iterable[str] | None = None,
                   ignore: Iterable[str] | None = None, debug: bool = False) -> ModelReport:
    """Read and diagnose one training log: a report whose ``format`` is ``history``
    (errors are raised as :class:`FileError`; the reader's notes go to stderr)."""
    from .analysis.history_logs import read_history
    from .rules.history import check_history

    try:
        history = read_history(path)
        findings = check_history(history, config=config, select=select, ignore=ignore, debug=debug)
    except FileError:
        raise
    except InspectorError as exc:
        raise FileError(path, exc) from exc
    for note in history.notes:
        print(f"inspector: note: {path}: {note}", file=sys.stderr)
    return ModelReport(path=path, name=os.path.basename(os.path.normpath(path)), format="history",
                       findings=tuple(findings))


class _Collector:
    """Reports and findings gathered while linting files one by one."""

    def __init__(self, *, fail_on: str, baseline: Baseline | None) -> None:
        self.fail_on = fail_on
        self.baseline = baseline
        self.reports: list[ModelReport] = []
        self.everything: list[tuple[str, list[Finding]]] = []

    def add(self, report: ModelReport) -> int:
        """Record ``report`` (filtered by the baseline); 1 when a finding fails the run."""
        findings = list(report.findings)
        self.everything.append((report.path, findings))
        suppressed = 0
        if self.baseline is not None:
            findings, suppressed = self.baseline.filter(report.path, findings)
        self.reports.append(replace(report, findings=tuple(findings), suppressed=suppressed))
        return 1 if any(fails(f.severity, self.fail_on) for f in findings) else 0

    def failed(self, path: str, error: InspectorError, *, fmt: str | None = None) -> None:
        """Record that ``path`` could not be linted."""
        cause = error.error if isinstance(error, FileError) else error
        self.reports.append(ModelReport(path=path, format=fmt, error=str(cause)))

    def add_history(self, path: str, *, config: LintConfig, select: Sequence[str] | None,
                    ignore: Sequence[str] | None, debug: bool) -> int:
        """Diagnose the training log ``path`` and record it as one more file."""
        try:
            return self.add(history_report(path, config=config, select=select, ignore=ignore, debug=debug))
        except FileError as exc:
            self.failed(path, exc, fmt="history")
            raise


def _enabled(selection: Selection, *, need: str | None = None) -> tuple[Rule, ...]:
    from .rules.registry import all_rules

    return tuple(r for r in all_rules() if r.code in selection.enabled and (need is None or need in r.needs))


def lint_files(models: Sequence[str], *, config: LintConfig, select: Sequence[str] | None = None,
               ignore: Sequence[str] | None = None, fail_on: str = "error", baseline: str | None = None,
               write_baseline: str | None = None, probe: ProbeOptions | None = None,
               history: str | None = None, debug: bool = False) -> LintRun:
    """Lint ``models`` (paths), then the training log ``history`` as one more file.

    ``baseline`` (default: the configuration's) hides recorded findings;
    ``write_baseline`` records every finding instead and turns exit code 1 into 0.
    ``probe`` runs each model on a batch first, for the rules that need it.
    """
    from .baseline import load_baseline
    from .baseline import write_baseline as record
    from .rules import lint
    from .rules.engine import resolve

    selection = resolve(config, select=select, ignore=ignore)  # bad selectors fail before any file is read
    baseline_path = baseline or (str(config.root / config.baseline) if config.baseline else None)
    found = _Collector(fail_on=fail_on,
                       baseline=load_baseline(baseline_path) if baseline_path and not write_baseline else None)

    def lint_one(path: str) -> int:
        try:
            graph = load_graph(path)
            graph.path = path
            measured = None
            if probe is not None:
                from .probe_run import probe_for_lint

                measured = probe_for_lint(graph, path, probe, selection)
            findings = lint(graph, config=config, select=select, ignore=ignore, debug=debug, probe=measured)
        except InspectorError as exc:
            found.failed(path, exc)
            if isinstance(exc, FileError):
                raise
            raise FileError(path, exc) from exc
        return found.add(ModelReport(path=path, name=graph.name, format=graph.format, findings=tuple(findings)))

    def history_one(path: str) -> int:
        return found.add_history(path, config=config, select=select, ignore=ignore, debug=debug)

    code = for_each_file(models, lint_one, debug=debug)
    if history:
        code = max(code, for_each_file([history], history_one, debug=debug))
    written = None
    if write_baseline:
        written = record(write_baseline, found.everything)
        code = min(code, 0) if code < 2 else code
    return LintRun(tuple(found.reports), _enabled(selection), code, written)


def lint_logs(logs: Sequence[str], *, config: LintConfig, select: Sequence[str] | None = None,
              ignore: Sequence[str] | None = None, fail_on: str = "error", debug: bool = False) -> LintRun:
    """Diagnose training logs alone (the ``HIST`` rules), each reported as one file."""
    from .rules.engine import resolve

    selection = resolve(config, select=select, ignore=ignore)
    found = _Collector(fail_on=fail_on, baseline=None)

    def one(path: str) -> int:
        return found.add_history(path, config=config, select=select, ignore=ignore, debug=debug)

    code = for_each_file(logs, one, debug=debug)
    return LintRun(tuple(found.reports), _enabled(selection, need="history"), code)
