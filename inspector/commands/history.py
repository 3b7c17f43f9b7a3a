"""``inspector history LOG...``: diagnose training logs (the ``HIST`` rules).

LOG is a Keras ``CSVLogger`` file, ``History.history`` saved as JSON, or a
TensorBoard log folder / event file.  Output formats, ``--select``/``--ignore``,
``--fail-on`` and the exit codes are those of ``inspector lint``; each finding's
location is the epoch where the problem starts (``LOG:epoch 12``).  The work is
:func:`inspector.lint_run.lint_logs`; this module wires the options.
"""

from __future__ import annotations

import argparse

from ._options import add_finding_options, check_output, resolve_finding_options, use_color, write_output


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("logs", nargs="+", metavar="LOG",
                        help="Keras CSVLogger file, History JSON, or TensorBoard log folder / event file")
    add_finding_options(parser,
                        select_help="rule codes or prefixes to enable, comma-separated (default: every HIST rule)",
                        ignore_help="rule codes or prefixes to disable, comma-separated")


def run(args: argparse.Namespace) -> int:
    from ..lint_run import lint_logs
    from ..reporters.lint import render

    opts = resolve_finding_options(args)
    check_output(args.output, args.logs)
    result = lint_logs(args.logs, config=opts.config, select=opts.select, ignore=opts.ignore,
                       fail_on=opts.fail_on, debug=opts.debug)
    write_output(render(result.reports, fmt=opts.fmt, rules=result.rules, fail_on=opts.fail_on,
                        statistics=args.statistics, color=use_color(opts.fmt, args.output)), args.output)
    return result.exit_code
