"""``inspector lint MODEL...``: check models and report findings for people and CI.

Exit code: 0 when no finding reaches ``--fail-on``, 1 when one does, 2 when a file
cannot be read or the command line / configuration is wrong (the worst wins).
The work is :func:`inspector.lint_run.lint_files`; this module wires the options.
"""

from __future__ import annotations

import argparse
import sys

from ._options import (
    add_batch_options,
    add_finding_options,
    add_probe_arguments,
    check_output,
    jobs_option,
    probe_options,
    resolve_finding_options,
    use_color,
    write_output,
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="+", metavar="MODEL",
                        help="model files (.keras, .h5, .onnx), SavedModel folders, or folders to search for models")
    add_finding_options(
        parser,
        select_help="rule codes or prefixes to enable, comma-separated (replaces the configured selection; "
                    "default ALL)",
        ignore_help="rule codes or prefixes to disable, comma-separated (added to the configured ones)")
    add_batch_options(parser)
    parser.add_argument("--baseline", metavar="FILE",
                        help="hide findings recorded in FILE (see --write-baseline)")
    parser.add_argument("--write-baseline", metavar="FILE",
                        help="record every current finding in FILE and exit 0")
    dynamic = parser.add_argument_group("dynamic analysis (runs the model or reads its training log)")
    dynamic.add_argument("--probe", action="store_true",
                         help="also run each model on one batch and check its activations (ACT003, ACT004, NUM005; "
                              "needs the tensorflow or runtime extra; see `inspector probe`)")
    add_probe_arguments(dynamic, trust="--trust" not in parser._option_string_actions)
    dynamic.add_argument("--history", metavar="LOG",
                         help="also diagnose a training log (CSVLogger CSV, History JSON or TensorBoard events; "
                              "HIST rules), reported as one more file")


def run(args: argparse.Namespace) -> int:
    from ..lint_run import lint_files
    from ..reporters.lint import render

    opts = resolve_finding_options(args)
    check_output(args.output, [*args.models, args.history, args.inputs, args.baseline])
    check_output(args.write_baseline, [*args.models, args.history, args.inputs], what="the baseline")
    result = lint_files(args.models, config=opts.config, select=opts.select, ignore=opts.ignore,
                        fail_on=opts.fail_on, baseline=args.baseline, write_baseline=args.write_baseline,
                        probe=probe_options(args) if args.probe else None, history=args.history,
                        debug=opts.debug, jobs=jobs_option(args), cache=not args.no_cache)
    if result.baseline_written is not None:
        print(f"inspector: wrote {result.baseline_written} finding(s) to {args.write_baseline}", file=sys.stderr)
    write_output(render(result.reports, fmt=opts.fmt, rules=result.rules, fail_on=opts.fail_on,
                        statistics=args.statistics, color=use_color(opts.fmt, args.output)), args.output)
    return result.exit_code
