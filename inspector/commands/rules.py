"""``inspector rules``: the rule catalog as a table (or JSON for tooling)."""

from __future__ import annotations

import argparse
import sys

from ..reporters import catalog


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--select", action="append", metavar="CODES",
                        help="only these codes or prefixes (comma-separated)")
    parser.add_argument("--output-format", choices=catalog.FORMATS, default="text")


def run(args: argparse.Namespace) -> int:
    from ..rules.engine import select_rules
    from ..rules.registry import all_rules

    rules = all_rules()
    if args.select:
        wanted = select_rules([p for v in args.select for p in v.split(",")])
        rules = [r for r in rules if r.code in wanted]
    sys.stdout.write(catalog.render(rules, fmt=args.output_format))
    return 0
