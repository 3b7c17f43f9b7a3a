"""``inspector info MODEL...``: the model card (format, producer, opsets, I/O, sizes, totals)."""

from __future__ import annotations

import argparse

from ..batch import for_each_file, load_graph, model_paths
from ..fileio import size_on_disk
from ..reporters.info import FORMATS, RENDERERS
from ._options import add_dim_option, add_format_option, add_output_option, check_output, dims_option, write_output


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("models", nargs="+", metavar="MODEL",
                   help=".keras, .h5 or .onnx file, a SavedModel folder, or a folder to search for models")
    add_format_option(p, choices=FORMATS, default="text", help="text (default) or json (schema inspector.info/1)")
    add_output_option(p)
    p.add_argument("--macs", action="store_true", help="add the total multiply-accumulate count")
    add_dim_option(p)


def run(args: argparse.Namespace) -> int:
    from ..analysis.card import ModelCard, model_card
    from ..analysis.duplicates import SUMMARY_READ_BYTES, find_duplicates
    from ..analysis.macs import count_macs
    from ..analysis.params import count_params

    fmt = RENDERERS[args.format]
    check_output(args.output, args.models)
    cards: list[ModelCard] = []
    paths = model_paths(args.models)
    parts: list[str] = []
    dims = dims_option(args)

    def one(path: str) -> int:
        graph = load_graph(path, dims=dims)
        duplicates = find_duplicates(graph, max_read_bytes=SUMMARY_READ_BYTES)
        card = model_card(graph, count_params(graph), macs=count_macs(graph) if args.macs else None,
                          file_size=size_on_disk(path), duplicates=duplicates)
        parts.append(fmt.each(card, len(cards)))
        if not args.output:
            write_output(parts[-1], None, flush=True)
        cards.append(card)
        return 0

    code = for_each_file(paths, one, debug=getattr(args, "debug", False))
    parts.append(fmt.end(cards, len(paths)))
    write_output("".join(parts) if args.output else parts[-1], args.output)
    return code
