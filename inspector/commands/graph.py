"""``inspector graph MODEL --format graphml|json|dot|mermaid``: export the layer graph."""

from __future__ import annotations

import argparse

from ..batch import load_graph
from ..reporters.graph_export import FORMATS
from ._options import add_format_option, add_output_option, check_output, whole_number, write_output


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help=".keras, .h5 or .onnx file, or a SavedModel folder")
    add_format_option(p, choices=FORMATS, default="graphml",
                      help="graphml (default; networkx/Gephi/yEd), json (networkx node-link), "
                           "dot (Graphviz) or mermaid")
    add_output_option(p)
    p.add_argument("--max-nodes", type=whole_number(minimum=0, why="must be 0 (no collapsing) or more"),
                   default=0, metavar="N",
                   help="mermaid: collapse the drawing into at most N blocks (default 0: every layer)")


def run(args: argparse.Namespace) -> int:
    from ..reporters.graph_export import render

    check_output(args.output, [args.model])
    graph = load_graph(args.model)
    write_output(render(graph, fmt=args.format, max_nodes=args.max_nodes or None), args.output)
    return 0
