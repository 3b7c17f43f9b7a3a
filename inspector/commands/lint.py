"""``inspector lint MODEL...``: check models and report findings for people and CI.

Exit code: 0 when no finding reaches ``--fail-on``, 1 when one does, 2 when a file
cannot be read or the command line / configuration is wrong (the worst wins).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import Any

from ..config import FAIL_ON, OUTPUT_FORMATS, load_config
from ..errors import InspectorError
from . import FileError, for_each_file, load_graph


def split_codes(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    return [part.strip() for v in values for part in v.split(",") if part.strip()]


def add_finding_options(parser: argparse.ArgumentParser, *, select_help: str, ignore_help: str) -> None:
    """The options every command that reports findings shares (ruff's names)."""
    parser.add_argument("--select", action="append", metavar="CODES", help=select_help)
    parser.add_argument("--ignore", action="append", metavar="CODES", help=ignore_help)
    parser.add_argument("--fail-on", choices=FAIL_ON, default=None,
                        help="lowest severity that makes the exit code 1 (default: error)")
    parser.add_argument("--output-format", choices=OUTPUT_FORMATS, default=None,
                        help="text (default), json, sarif, junit or github (workflow annotations)")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="write the report to FILE (atomically) instead of standard output")
    parser.add_argument("--config", metavar="FILE",
                        help="read options from FILE instead of the nearest pyproject.toml [tool.inspector]")
    parser.add_argument("--isolated", action="store_true", help="ignore every configuration file")
    parser.add_argument("--statistics", action="store_true",
                        help="text output: add the number of findings per rule")


@dataclass(frozen=True, slots=True)
class FindingOptions:
    """The finding options of one run, resolved against the configuration file."""

    config: Any
    select: list[str] | None
    ignore: list[str] | None
    selection: Any
    fail_on: str
    fmt: str
    debug: bool


def resolve_finding_options(args: argparse.Namespace) -> FindingOptions:
    """Flags over ``[tool.inspector]``; bad selectors fail before any file is read."""
    from ..rules import resolve

    config = load_config(args.config, isolated=args.isolated)
    select, ignore = split_codes(args.select), split_codes(args.ignore)
    return FindingOptions(
        config=config, select=select, ignore=ignore,
        selection=resolve(config, select=select, ignore=ignore),
        fail_on=args.fail_on or config.fail_on,
        fmt=args.output_format or config.output_format,
        debug=bool(getattr(args, "debug", False)))


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="+", metavar="MODEL",
                        help="model files (.keras, .h5, .onnx) or SavedModel folders")
    add_finding_options(
        parser,
        select_help="rule codes or prefixes to enable, comma-separated (replaces the configured selection; "
                    "default ALL)",
        ignore_help="rule codes or prefixes to disable, comma-separated (added to the configured ones)")
    parser.add_argument("--baseline", metavar="FILE",
                        help="hide findings recorded in FILE (see --write-baseline)")
    parser.add_argument("--write-baseline", metavar="FILE",
                        help="record every current finding in FILE and exit 0")
    from .probe import add_probe_arguments

    dynamic = parser.add_argument_group("dynamic analysis (runs the model or reads its training log)")
    dynamic.add_argument("--probe", action="store_true",
                         help="also run each model on one batch and check its activations (ACT003, ACT004, NUM005; "
                              "needs the tensorflow or runtime extra; see `inspector probe`)")
    add_probe_arguments(dynamic, trust="--trust" not in parser._option_string_actions)
    dynamic.add_argument("--history", metavar="LOG",
                         help="also diagnose a training log (CSVLogger CSV, History JSON or TensorBoard events; "
                              "HIST rules), reported as one more file")


def run(args: argparse.Namespace) -> int:
    from ..baseline import load_baseline, write_baseline
    from ..fileio import write_atomic
    from ..reporters.lint import fails, render
    from ..rules import ModelReport, all_rules, lint

    opts = resolve_finding_options(args)
    config, select, ignore, selection = opts.config, opts.select, opts.ignore, opts.selection
    fail_on, fmt = opts.fail_on, opts.fmt
    baseline_path = args.baseline or (str(config.root / config.baseline) if config.baseline else None)
    baseline = load_baseline(baseline_path) if baseline_path and not args.write_baseline else None
    debug = opts.debug
    reports: list[ModelReport] = []
    everything: list[tuple[str, list]] = []

    def lint_one(path: str) -> int:
        try:
            graph = load_graph(path)
            graph.path = path
            probe = None
            if getattr(args, "probe", False):
                from .probe import probe_for_lint

                probe = probe_for_lint(graph, path, args, selection)
            findings = lint(graph, config=config, select=select, ignore=ignore, debug=debug, probe=probe)
        except InspectorError as exc:
            cause = exc.error if isinstance(exc, FileError) else exc
            reports.append(ModelReport(path=path, error=str(cause)))
            if isinstance(exc, FileError):
                raise
            raise FileError(path, exc) from exc
        everything.append((path, findings))
        suppressed = 0
        if baseline is not None:
            findings, suppressed = baseline.filter(path, findings)
        reports.append(ModelReport(path=path, name=graph.name, format=graph.format,
                                   findings=tuple(findings), suppressed=suppressed))
        return 1 if any(fails(f.severity, fail_on) for f in findings) else 0

    def history_one(path: str) -> int:
        from dataclasses import replace

        from .history import history_report

        try:
            report = history_report(path, config=config, select=select, ignore=ignore, debug=debug)
        except FileError as exc:
            reports.append(ModelReport(path=path, format="history", error=str(exc.error)))
            raise
        findings = list(report.findings)
        everything.append((path, findings))
        suppressed = 0
        if baseline is not None:
            findings, suppressed = baseline.filter(path, findings)
        reports.append(replace(report, findings=tuple(findings), suppressed=suppressed))
        return 1 if any(fails(f.severity, fail_on) for f in findings) else 0

    code = for_each_file(args.models, lint_one, debug=debug)
    if getattr(args, "history", None):  # `lint MODEL --history LOG`: the log is reported as one more file
        code = max(code, for_each_file([args.history], history_one, debug=debug))
    if args.write_baseline:
        n = write_baseline(args.write_baseline, everything)
        print(f"inspector: wrote {n} finding(s) to {args.write_baseline}", file=sys.stderr)
        code = min(code, 0) if code < 2 else code
    rules = [r for r in all_rules() if r.code in selection.enabled]
    color = (fmt == "text" and not args.output and sys.stdout.isatty()
             and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb")
    text = render(reports, fmt=fmt, rules=rules, fail_on=fail_on, statistics=args.statistics, color=color)
    if args.output:
        write_atomic(args.output, text)
    else:
        sys.stdout.write(text)
    return code
