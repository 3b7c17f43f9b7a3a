"""``inspector info MODEL...``: the model card (format, producer, opsets, I/O, sizes, totals)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..batch import for_each_file, load_graph
from ..pathsafety import lies_inside
from ..reporters.info import FORMATS, RENDERERS


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("models", nargs="+", metavar="MODEL",
                   help=".keras, .h5 or .onnx file, or a SavedModel folder")
    p.add_argument("-f", "--format", default="text", choices=FORMATS,
                   help="text (default) or json (schema inspector.info/1)")
    p.add_argument("--macs", action="store_true", help="add the total multiply-accumulate count")


def size_on_disk(path: str) -> int | None:
    """Bytes on disk: the file, or every file of a SavedModel folder that lies inside it
    (no symbolic links: :func:`inspector.pathsafety.lies_inside`)."""
    p = Path(path)
    try:
        if p.is_file():
            return p.stat().st_size
        total = 0
        for root, _dirs, files in os.walk(p, followlinks=False):
            for name in files:
                fp = Path(root, name)
                if fp.is_file() and lies_inside(p, fp):
                    total += fp.stat().st_size
        return total
    except OSError:
        return None


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
