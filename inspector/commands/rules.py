"""``inspector rules``: the rule catalog as a table (or JSON for tooling)."""

from __future__ import annotations

import argparse
import json
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--select", action="append", metavar="CODES",
                        help="only these codes or prefixes (comma-separated)")
    parser.add_argument("--output-format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    from ..rules.engine import select_rules
    from ..rules.registry import all_rules

    rules = all_rules()
    if args.select:
        wanted = select_rules([p for v in args.select for p in v.split(",")])
        rules = [r for r in rules if r.code in wanted]
    if args.output_format == "json":
        doc = [{"code": r.code, "name": r.name, "severity": r.severity.value, "family": r.family,
                "applies_to": sorted(r.types) if r.types is not None else None,
                "formats": list(r.formats), "needs": sorted(r.needs), "states": list(r.states),
                "options": dict(r.options), "summary": r.summary} for r in rules]
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return 0
    width = max((len(r.code) for r in rules), default=4)
    nwidth = max((len(r.name) for r in rules), default=4)
    lines = [f"{'CODE':<{width}}  {'NAME':<{nwidth}}  {'SEVERITY':<8}  SUMMARY"]
    for r in rules:
        lines.append(f"{r.code:<{width}}  {r.name:<{nwidth}}  {r.severity.value:<8}  {r.summary}")
    lines.append("")
    lines.append(f"{len(rules)} rules. `inspector rule CODE` shows what a rule checks and why.")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
