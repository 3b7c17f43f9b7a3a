"""``inspector info MODEL...``: the model card (format, producer, opsets, I/O, sizes, totals)."""

from __future__ import annotations

import argparse
import sys

from ..batch import for_each_file, load_graph
from ..fileio import size_on_disk
from ..reporters.info import FORMATS, RENDERERS


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("models", nargs="+", metavar="MODEL",
                   help=".keras, .h5 or .onnx file, or a SavedModel folder")
    p.add_argument("-f", "--format", default="text", choices=FORMATS,
                   help="text (default) or json (schema inspector.info/1)")
    p.add_argument("--macs", action="store_true", help="add the total multiply-accumulate count")


def run(args: argparse.Namespace) -> int:
    from ..analysis.card import ModelCard, model_card
    from ..analysis.macs import count_macs
    from ..analysis.params import count_params

    fmt = RENDERERS[args.format]
    cards: list[ModelCard] = []

    def one(path: str) -> int:
        graph = load_graph(path)
        card = model_card(graph, count_params(graph), macs=count_macs(graph) if args.macs else None,
                          file_size=size_on_disk(path))
        sys.stdout.write(fmt.each(card, len(cards)))
        cards.append(card)
        return 0

    code = for_each_file(args.models, one, debug=getattr(args, "debug", False))
    sys.stdout.write(fmt.end(cards, len(args.models)))
    return code
