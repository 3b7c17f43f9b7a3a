"""``inspector history LOG...``: diagnose training logs (the ``HIST`` rules).

LOG is a Keras ``CSVLogger`` file, ``History.history`` saved as JSON, or a
TensorBoard log folder / event file.  Output formats, ``--select``/``--ignore``,
``--fail-on`` and the exit codes are those of ``inspector lint``; each finding's
location is the epoch where the problem starts (``LOG:epoch 12``).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Iterable

from ..errors import InspectorError
from . import FileError, for_each_file
from .lint import add_finding_options, resolve_finding_options


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("logs", nargs="+", metavar="LOG",
                        help="Keras CSVLogger file, History JSON, or TensorBoard log folder / event file")
    add_finding_options(parser,
                        select_help="rule codes or prefixes to enable, comma-separated (default: every HIST rule)",
                        ignore_help="rule codes or prefixes to disable, comma-separated")


def history_report(path: str, *, config: Any, select: Iterable[str] | None, ignore: Iterable[str] | None,
                   debug: bool = False):
    """Read and diagnose one log: a :class:`~inspector.rules.ModelReport` whose
    ``format`` is ``history`` (errors are raised as :class:`FileError`)."""
    from ..analysis.history_logs import read_history
    from ..rules import ModelReport
    from ..rules.history import check_history

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


def run(args: argparse.Namespace) -> int:
    from ..fileio import write_atomic
    from ..reporters.lint import fails, render
    from ..rules import ModelReport, all_rules

    opts = resolve_finding_options(args)
    config, select, ignore, selection = opts.config, opts.select, opts.ignore, opts.selection
    fail_on, fmt, debug = opts.fail_on, opts.fmt, opts.debug
    reports: list[ModelReport] = []

    def one(path: str) -> int:
        try:
            report = history_report(path, config=config, select=select, ignore=ignore, debug=debug)
        except FileError as exc:
            reports.append(ModelReport(path=path, format="history", error=str(exc.error)))
            raise
        reports.append(report)
        return 1 if any(fails(f.severity, fail_on) for f in report.findings) else 0

    code = for_each_file(args.logs, one, debug=debug)
    rules = [r for r in all_rules() if r.code in selection.enabled and "history" in r.needs]
    color = (fmt == "text" and not args.output and sys.stdout.isatty()
             and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb")
    text = render(reports, fmt=fmt, rules=rules, fail_on=fail_on, statistics=args.statistics, color=color)
    if args.output:
        write_atomic(args.output, text)
    else:
        sys.stdout.write(text)
    return code
