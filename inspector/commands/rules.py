"""``inspector rules``: the rule catalog as a table (or JSON for tooling)."""

from __future__ import annotations

import argparse

from ..reporters import catalog
from ._options import add_format_option, add_output_option, write_output


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--select", action="append", metavar="CODES",
                        help="only these codes or prefixes (comma-separated)")
    add_format_option(parser, choices=catalog.FORMATS, default="text",
                      help="text (default) or json (every field of each rule, for tooling)")
    add_output_option(parser)


def run(args: argparse.Namespace) -> int:
    from ..rules.engine import select_rules
    from ..rules.registry import all_rules

    rules = all_rules()
    if args.select:
        wanted = select_rules([p for v in args.select for p in v.split(",")])
        rules = [r for r in rules if r.code in wanted]
    write_output(catalog.render(rules, fmt=args.format), args.output)
    return 0
