"""``inspector rule CODE``: a rule's documentation (what it does, why it matters, an example)."""

from __future__ import annotations

import argparse
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("code", metavar="CODE", help="rule code, e.g. INIT002")


def run(args: argparse.Namespace) -> int:
    from ..rules.registry import get_rule

    r = get_rule(args.code)
    lines = [f"{r.code} ({r.name})", "",
             f"Default severity: {r.severity.value}",
             f"Applies to: {r.applies_to()}"]
    if r.options:
        opts = ", ".join(f"{k} = {v!r}" for k, v in r.options.items())
        lines.append(f"Options ([tool.inspector.rules.{r.code}]): {opts}")
    lines += ["", r.doc, ""]
    sys.stdout.write("\n".join(lines))
    return 0
