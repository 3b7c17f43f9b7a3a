"""``inspector diff A B``: what changed between two models (layers, totals, MACs, findings).

Exit code: 0, or 1 when a kind named by ``--fail-on-change`` changed (CI gating:
``--fail-on-change params,shapes``), 2 when a file cannot be read or the command
line is wrong.  See :mod:`inspector.analysis.diff` for how layers are matched.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import InspectorError, UsageError
from ..findings import SEVERITIES
from ..reporters import diff as diff_formats
from ..textsafe import visible
from ._options import (
    add_config_options,
    add_dim_option,
    add_format_option,
    add_output_option,
    check_output,
    dims_option,
    load_config_option,
    write_output,
)


def _kinds(values: list[str] | None) -> tuple[str, ...]:
    from ..analysis.diff import KINDS

    if not values:
        return ()
    out: list[str] = []
    for v in values:
        for part in v.split(","):
            part = part.strip().lower()
            if not part:
                continue
            if part in ("any", "all"):
                out.extend(KINDS)
            elif part in KINDS:
                out.append(part)
            else:
                raise UsageError(f"unknown --fail-on-change kind {part!r}: choose from {', '.join(KINDS)} or any")
    return tuple(dict.fromkeys(out))


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", metavar="A", help="the model before (.keras, .h5, .onnx or SavedModel folder)")
    p.add_argument("b", metavar="B", help="the model after (any format: a .keras and its ONNX export compare)")
    add_format_option(p, choices=diff_formats.FORMATS, default="text",
                      help="text (default), json (schema inspector.diff/1) or markdown (for a PR comment)")
    add_output_option(p)
    p.add_argument("--fail-on-change", action="append", metavar="KINDS",
                   help="exit 1 when one of these changed, comma-separated: params, shapes, layers (added, "
                        "removed or retyped), macs, findings (new ones), or any")
    p.add_argument("--fail-on", choices=SEVERITIES, default="warning",
                   help="lowest severity of a new finding that counts as a findings change (default warning)")
    p.add_argument("--no-lint", action="store_true", help="do not lint the models (no findings comparison)")
    add_dim_option(p)
    add_config_options(p, config_help="read [tool.inspector] lint options from FILE")


def run(args: argparse.Namespace) -> int:
    from ..analysis.diff import diff_models
    from ..batch import load_graph

    gate = _kinds(args.fail_on_change)
    check_output(args.output, [args.a, args.b])
    dims = dims_option(args)
    found: set[str] = set()  # each model binds the names that are its symbols; a name neither has is an error
    a = load_graph(args.a, dims=dims, dims_found=found)
    a.path = args.a
    b = load_graph(args.b, dims=dims, dims_found=found)
    if set(dims) - found:
        from ..loaders.bind import unknown_dims

        raise unknown_dims(sorted(set(dims) - found), None)
    b.path = args.b
    findings_a = findings_b = None
    if not args.no_lint:
        from ..rules import lint

        config = load_config_option(args)
        try:
            findings_a = lint(a, config=config, debug=bool(getattr(args, "debug", False)))
            findings_b = lint(b, config=config, debug=bool(getattr(args, "debug", False)))
        except UsageError:
            raise
        except InspectorError as exc:
            print(f"inspector: warning: findings not compared: {visible(str(exc))}", file=sys.stderr)
            findings_a = findings_b = None
    d = diff_models(a, b, findings_a=findings_a, findings_b=findings_b)
    kinds = d.kinds_changed(findings_at=args.fail_on)
    write_output(diff_formats.render(d, fmt=args.format, kinds=kinds), args.output)
    return 1 if any(k in gate for k in kinds) else 0
