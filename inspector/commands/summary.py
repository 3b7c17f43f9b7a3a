"""``inspector summary MODEL...``: the layer table."""

from __future__ import annotations

import argparse

from ..batch import for_each_file, load_graph
from ._options import ModelOutputs, add_format_option, add_output_option, check_output


def _positions(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("models", nargs="+", metavar="MODEL",
                   help=".keras, .h5 or .onnx file, or a SavedModel folder")
    add_format_option(p, choices=None, default="classic",
                      help="classic (the Keras 2 listing, default), keras3 (Keras 3's table), json, csv, "
                           "or any tabulate format "
                           "(github, grid, simple, pipe, …)")
    add_output_option(p)
    p.add_argument("--macs", action="store_true", help="add a multiply-accumulate column and total")
    p.add_argument("--line-length", type=int, default=None, metavar="N",
                   help="classic/keras3 formats: total line length (classic: 98, or 65 for sequential "
                        "models; keras3: 108, or 88)")
    p.add_argument("--positions", type=_positions, default=None, metavar="P1,P2,…",
                   help="classic/keras3 formats: column stops, as fractions of the line or absolute columns")


def run(args: argparse.Namespace) -> int:
    from ..reporters.summary import check_format, render

    check_format(args.format)
    check_output(args.output, args.models)
    outputs = ModelOutputs(args.output, fmt=args.format)

    def one(path: str) -> int:
        graph = load_graph(path)
        # Several models in JSON: one compact document per line (JSON Lines).
        outputs.add(render(graph, fmt=args.format, macs=args.macs, line_length=args.line_length,
                           positions=args.positions, compact=len(args.models) > 1))
        return 0

    code = for_each_file(args.models, one, debug=args.debug)
    outputs.close()
    return code
