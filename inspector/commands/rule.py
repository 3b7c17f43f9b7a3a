"""``inspector rule CODE``: a rule's documentation (what it does, why it matters, an example)."""

from __future__ import annotations

import argparse

from ..reporters.catalog import PAGE_FORMATS
from ._options import add_format_option, add_output_option, write_output


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("code", metavar="CODE", help="rule code, e.g. INIT002")
    add_format_option(parser, choices=tuple(PAGE_FORMATS), default="text",
                      help="text (default) or json (the rule's catalog fields and its documentation)")
    add_output_option(parser)


def run(args: argparse.Namespace) -> int:
    from ..rules.registry import get_rule

    write_output(PAGE_FORMATS[args.format](get_rule(args.code)), args.output)
    return 0
