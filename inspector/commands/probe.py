"""``inspector probe MODEL...``: run a model on one batch and measure every activation.

Prints one row per activation (saturated share, dead units, mean/std,
NaN/Inf counts) in any summary table format (``classic`` by default, ``json``,
``csv``, tabulate formats).  The model runs only when the static safety scan
finds nothing (``--trust`` overrides), through TensorFlow for Keras files and
onnxruntime for ONNX.  ``inspector lint --probe`` turns the same measurements
into findings (ACT003, ACT004, NUM005).  The work is :mod:`inspector.probe_run`.
"""

from __future__ import annotations

import argparse
import sys

from ._options import add_probe_arguments, probe_options


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="+", metavar="MODEL", help=".keras, .h5 or .onnx file")
    parser.add_argument("-f", "--format", default="classic", metavar="FORMAT",
                        help="classic (default), json, csv, or any tabulate format (simple, github, grid, …)")
    add_probe_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ..batch import for_each_file, load_graph
    from ..errors import FileError, InspectorError
    from ..probe_run import run_probe
    from ..reporters.probe_table import render
    from ..reporters.summary import check_format, streams_as_lines

    check_format(args.format)
    options = probe_options(args)
    first = True

    def one(path: str) -> int:
        nonlocal first
        graph = load_graph(path)
        graph.path = path
        try:
            report = run_probe(graph, path, options)
        except FileError:
            raise
        except InspectorError as exc:
            raise FileError(path, exc) from exc
        text = render(report, fmt=args.format, compact=len(args.models) > 1)
        if not first and not streams_as_lines(args.format):
            sys.stdout.write("\n")
        first = False
        sys.stdout.write(text)
        sys.stdout.flush()
        return 0

    return for_each_file(args.models, one, debug=bool(getattr(args, "debug", False)))
