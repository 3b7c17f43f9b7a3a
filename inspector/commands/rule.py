"""``inspector rule CODE``: a rule's documentation (what it does, why it matters, an example)."""

from __future__ import annotations

import argparse
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("code", metavar="CODE", help="rule code, e.g. INIT002")


def run(args: argparse.Namespace) -> int:
    from ..reporters.catalog import rule_page
    from ..rules.registry import get_rule

    sys.stdout.write(rule_page(get_rule(args.code)))
    return 0
