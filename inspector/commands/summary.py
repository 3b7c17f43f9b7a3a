"""``inspector summary MODEL...``: the layer table."""

from __future__ import annotations

import argparse
import sys

from ..batch import for_each_file, load_graph


def _positions(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("models", nargs="+", metavar="MODEL",
                   help=".keras, .h5 or .onnx file, or a SavedModel folder")
    p.add_argument("-f", "--format", default="classic", metavar="FORMAT",
                   help="classic (the Keras 2 listing, default), keras3 (Keras 3's table), json, csv, "
                        "or any tabulate format (github, grid, simple, pipe, …)")
    p.add_argument("--macs", action="store_true", help="add a multiply-accumulate column and total")
    p.add_argument("--line-length", type=int, default=None, metavar="N",
                   help="classic/keras3 formats: total line length (classic: 98, or 65 for sequential "
                        "models; keras3: 108, or 88)")
    p.add_argument("--positions", type=_positions, default=None, metavar="P1,P2,…",
                   help="classic/keras3 formats: column stops, as fractions of the line or absolute columns")


def run(args: argparse.Namespace) -> int:
    from ..reporters.summary import check_format, render, streams_as_lines

    check_format(args.format)
    first = True

    def one(path: str) -> int:
        nonlocal first
        graph = load_graph(path)
        # Several models in JSON: one compact document per line (JSON Lines).
        text = render(graph, fmt=args.format, macs=args.macs, line_length=args.line_length,
                      positions=args.positions, compact=len(args.models) > 1)
        if not first and not streams_as_lines(args.format):
            sys.stdout.write("\n")
        first = False
        sys.stdout.write(text)
        sys.stdout.flush()
        return 0

    return for_each_file(args.models, one, debug=args.debug)
