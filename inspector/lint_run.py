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
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Sequence, overload

from .batch import Cached, for_each_file, load_graph
from .errors import FileError, InspectorError
from .findings import LOG_FORMAT, Finding, ModelReport, Severity, fails

if TYPE_CHECKING:  # pragma: no cover
    from .baseline import Baseline
    from .config import LintConfig
    from .probe_run import ProbeOptions
    from .rules.engine import Selection
    from .rules.registry import Rule


class RuleList(Sequence["Rule"]):
    """The rules with ``codes``, in catalog order, the catalog loaded on first use: a run whose results
    all come from the cache prints them without importing the rule families (and what they import)."""

    def __init__(self, codes: Iterable[str], *, need: str | None = None) -> None:
        self.codes = frozenset(codes)
        self.need = need
        self._rules: tuple[Rule, ...] | None = None

    def _loaded(self) -> tuple[Rule, ...]:
        if self._rules is None:
            from .rules.registry import all_rules

            self._rules = tuple(r for r in all_rules()
                                if r.code in self.codes and (self.need is None or self.need in r.needs))
        return self._rules

    @overload
    def __getitem__(self, index: int) -> Rule: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Rule, ...]: ...

    def __getitem__(self, index: int | slice) -> Rule | tuple[Rule, ...]:
        return self._loaded()[index]

    def __len__(self) -> int:
        return len(self._loaded())

    def __iter__(self) -> Iterator[Rule]:
        return iter(self._loaded())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and tuple(self) == tuple(other)

    def __hash__(self) -> int:
        return hash(self._loaded())

    def __repr__(self) -> str:
        return f"RuleList({sorted(self.codes)!r})"


@dataclass(frozen=True)
class LintRun:
    """The outcome of linting several files."""

    reports: tuple[ModelReport, ...]
    """One per file, in the order given (a file that could not be read has ``error`` set)."""
    rules: Sequence[Rule]
    """The rules that ran (SARIF describes them; a :class:`RuleList`, loaded when first read)."""
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
    return ModelReport(path=path, name=os.path.basename(os.path.normpath(path)), format=LOG_FORMAT,
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
            self.failed(path, exc, fmt=LOG_FORMAT)
            raise


def _enabled(selection: Selection, *, need: str | None = None) -> RuleList:
    return RuleList(selection.enabled, need=need)


def _fingerprint(task: LintTask) -> dict[str, Any]:
    """What the lint results depend on besides the model and the version: the configuration and overrides."""
    return {"config": {k: v for k, v in asdict(task.config).items() if k != "source"},
            "select": task.select, "ignore": task.ignore}


def _checked_selection(task: LintTask, *, cache: bool) -> RuleList:
    """The rules ``task`` enables, its selectors and rule options checked (a :class:`UsageError` before any
    file is read).  With ``cache``, a selection checked before under the same version, configuration and
    overrides is read back from the cache (its rule codes), so a warm run does not load the rule catalog."""
    from .cache import ResultCache, cache_folder

    folder = cache_folder(enabled=cache)
    store = None if folder is None else ResultCache(folder, namespace="lint-selection",
                                                    fingerprint=_fingerprint(task))
    key = None if store is None else store.config_key()
    known = None if store is None or key is None else store.get(key)
    codes = None if known is None else known.get("enabled")
    if isinstance(codes, list) and all(isinstance(c, str) for c in codes):
        return RuleList(codes)
    from .rules.engine import resolve

    selection = resolve(task.config, select=task.select, ignore=task.ignore)
    if store is not None and key is not None:
        store.put(key, {"enabled": sorted(selection.enabled)})
    return _enabled(selection)


@dataclass(frozen=True)
class LintTask:
    """What :func:`lint_model` needs besides the path (picklable: it goes to worker processes)."""

    config: LintConfig
    select: Sequence[str] | None = None
    ignore: Sequence[str] | None = None
    probe: ProbeOptions | None = None
    debug: bool = False


@dataclass(frozen=True)
class Linted:
    """One model's lint outcome: its report (``error`` set when it could not be read) and
    the stderr line that says why (without the ``inspector: error:`` prefix)."""

    report: ModelReport
    error_line: str | None = None
    exit_code: int = 0


def lint_model(path: str, task: LintTask) -> Linted:
    """Load and lint the model at ``path``: a pure top-level function, run in worker processes by
    :func:`lint_files` (errors are returned, not raised, unless ``task.debug``)."""
    from .rules import lint

    try:
        graph = load_graph(path)
        graph.path = path
        measured = None
        if task.probe is not None:
            from .probe_run import probe_for_lint
            from .rules.engine import resolve

            selection = resolve(task.config, select=task.select, ignore=task.ignore)
            measured = probe_for_lint(graph, path, task.probe, selection)
        findings = lint(graph, config=task.config, select=task.select, ignore=task.ignore, debug=task.debug,
                        probe=measured)
    except InspectorError as exc:
        if task.debug:
            raise
        return failed_lint(path, exc)
    return Linted(ModelReport(path=path, name=graph.name, format=graph.format, findings=tuple(findings)))


def failed_lint(path: str, exc: InspectorError | str) -> Linted:
    """The outcome of a model that could not be linted (``exc``: the error, or its text)."""
    if isinstance(exc, str):
        return Linted(ModelReport(path=path, error=exc), f"{path}: {exc}", 2)
    cause = exc.error if isinstance(exc, FileError) else exc
    line = str(exc) if isinstance(exc, FileError) else f"{path}: {exc}"
    return Linted(ModelReport(path=path, error=str(cause)), line, exc.exit_code)


def _encode(outcome: Linted) -> dict[str, Any] | None:
    r = outcome.report
    if r.error is not None:
        return None
    return {"name": r.name, "format": r.format,
            "findings": [[f.code, f.name, f.severity.value, f.message, f.layer, f.path] for f in r.findings]}


def _decode(path: str, doc: Mapping[str, Any]) -> Linted | None:
    findings = []
    for code, name, severity, message, layer, where in doc["findings"]:
        if not all(isinstance(v, str) for v in (code, name, message)) or not isinstance(layer, (str, type(None))):
            return None
        findings.append(Finding(code, name, Severity(severity), message, layer, where))
    name, fmt = doc["name"], doc["format"]
    if not isinstance(name, (str, type(None))) or not isinstance(fmt, (str, type(None))):
        return None
    return Linted(ModelReport(path=path, name=name, format=fmt, findings=tuple(findings)))


def lint_cache(task: LintTask, *, enabled: bool = True) -> Cached[Linted] | None:
    """The cache of lint results under ``task``'s configuration (``None``: off, or a probe run)."""
    from .cache import ResultCache, cache_folder

    folder = cache_folder(enabled=enabled)
    if folder is None or task.probe is not None:
        return None
    return Cached(ResultCache(folder, namespace="lint", fingerprint=_fingerprint(task)), _encode, _decode)


# long: the one lint use case: options, files, cache, workers, baseline, history, exit code
def lint_files(models: Sequence[str], *, config: LintConfig, select: Sequence[str] | None = None,
               ignore: Sequence[str] | None = None, fail_on: str = "error", baseline: str | None = None,
               write_baseline: str | None = None, probe: ProbeOptions | None = None,
               history: str | None = None, debug: bool = False, jobs: int = 1, cache: bool = False) -> LintRun:
    """Lint ``models`` (paths; folders are searched for models), then the training log ``history``
    as one more file.

    ``baseline`` (default: the configuration's) hides recorded findings;
    ``write_baseline`` records every finding instead and turns exit code 1 into 0.
    ``probe`` runs each model on a batch first, for the rules that need it.
    ``jobs`` > 1 lints in that many worker processes (``debug`` runs in this one);
    ``cache`` reuses the results of unchanged models (:mod:`inspector.cache`).
    """
    from .baseline import load_baseline
    from .baseline import write_baseline as record
    from .batch import model_paths, run_files
    if not cache:  # every model will be read: let the workers' imports overlap this process's own
        from .parallel import warm_up

        warm_up(1 if debug else jobs)
    task = LintTask(config=config, select=select, ignore=ignore, probe=probe, debug=debug)
    rules = _checked_selection(task, cache=cache)  # bad selectors fail before any file is read
    baseline_path = baseline or (str(config.root / config.baseline) if config.baseline else None)
    found = _Collector(fail_on=fail_on,
                       baseline=load_baseline(baseline_path) if baseline_path and not write_baseline else None)
    paths = model_paths(models, discovery=config.discovery)
    code = 0
    for outcome in run_files(lint_model, paths, task, jobs=1 if debug else jobs, crashed=failed_lint,
                             cached=lint_cache(task, enabled=cache), label="lint"):
        if outcome.error_line is not None:
            print(f"inspector: error: {outcome.error_line}", file=sys.stderr)
            found.reports.append(outcome.report)
            code = max(code, outcome.exit_code)
        else:
            code = max(code, found.add(outcome.report))

    def history_one(path: str) -> int:
        return found.add_history(path, config=config, select=select, ignore=ignore, debug=debug)

    if history:
        code = max(code, for_each_file([history], history_one, debug=debug))
    written = None
    if write_baseline:
        written = record(write_baseline, found.everything)
        code = min(code, 0) if code < 2 else code
    return LintRun(tuple(found.reports), rules, code, written)


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
