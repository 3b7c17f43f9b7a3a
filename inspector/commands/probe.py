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

from ._options import (
    ModelOutputs,
    add_format_option,
    add_output_option,
    add_probe_arguments,
    check_output,
    probe_options,
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="+", metavar="MODEL", help=".keras, .h5 or .onnx file")
    add_format_option(parser, choices=None, default="classic",
                      help="classic (default), json, csv, or any tabulate format (simple, github, grid, …)")
    add_output_option(parser)
    add_probe_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ..batch import for_each_file, load_graph
    from ..errors import FileError, InspectorError
    from ..probe_run import run_probe
    from ..reporters.probe_table import render
    from ..reporters.summary import check_format

    check_format(args.format)
    check_output(args.output, [*args.models, args.inputs])
    options = probe_options(args)
    outputs = ModelOutputs(args.output, fmt=args.format)

    def one(path: str) -> int:
        graph = load_graph(path)
        graph.path = path
        try:
            report = run_probe(graph, path, options)
        except FileError:
            raise
        except InspectorError as exc:
            raise FileError(path, exc) from exc
        outputs.add(render(report, fmt=args.format, compact=len(args.models) > 1))
        return 0

    code = for_each_file(args.models, one, debug=bool(getattr(args, "debug", False)))
    outputs.close()
    return code
