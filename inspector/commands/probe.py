"""``inspector probe MODEL...``: run a model on one batch and measure every activation.

Prints one row per activation (saturated share, dead units, mean/std,
NaN/Inf counts) in any summary table format (``classic`` by default, ``json``,
``csv``, tabulate formats).  The model runs only when the static safety scan
finds nothing (``--trust`` overrides), through TensorFlow for Keras files and
onnxruntime for ONNX.  ``inspector lint --probe`` turns the same measurements
into findings (ACT003, ACT004, NUM005).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from . import FileError, for_each_file, load_graph


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def add_probe_arguments(parser: argparse.ArgumentParser, *, trust: bool = True) -> None:
    """The options that choose the probe's batch (shared with ``lint --probe``)."""
    parser.add_argument("--inputs", metavar="FILE",
                        help="a batch to feed: .npy (one input) or .npz (one array per input, by name or arr_0…); "
                             "default: synthetic data (standard normal, or 0..255 for inputs the model rescales)")
    parser.add_argument("--batch-size", type=_positive, default=8, metavar="N",
                        help="synthetic samples to draw, and samples per forward pass (default 8)")
    parser.add_argument("--seed", type=_seed, default=0, metavar="N",
                        help="random seed of the synthetic inputs (default 0)")
    if trust:
        parser.add_argument("--trust", action="store_true",
                            help="run the model even if the static safety scan found code or outside references "
                                 "in it (SEC findings): only for files whose author you trust")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="+", metavar="MODEL", help=".keras, .h5 or .onnx file")
    parser.add_argument("-f", "--format", default="classic", metavar="FORMAT",
                        help="classic (default), json, csv, or any tabulate format (simple, github, grid, …)")
    add_probe_arguments(parser)


def run_probe(graph: Any, path: str, args: argparse.Namespace):
    """Probe one loaded model with the command line's options, a progress line on
    stderr when it is a terminal."""
    from ..analysis.probe import probe
    from ..reporters.progress import ProgressLine

    with ProgressLine(f"probe {path}") as progress:
        return probe(graph, inputs=args.inputs, batch_size=args.batch_size, seed=args.seed,
                     trust=bool(getattr(args, "trust", False)), progress=progress)


PROBE_RULES = ("ACT003", "ACT004", "NUM005")


def probe_for_lint(graph: Any, path: str, args: argparse.Namespace, selection: Any = None):
    """``lint --probe``: the probe report for one model, or ``None`` when no probe
    rule is enabled or the static scan found a security problem (then the model is
    not run — the SEC findings say why — and a warning goes to stderr)."""
    from ..errors import UnsafeModel

    if selection is not None and not any(selection.is_enabled(code) for code in PROBE_RULES):
        return None
    try:
        return run_probe(graph, path, args)
    except UnsafeModel as exc:
        print(f"inspector: warning: {path}: probe skipped: {exc}", file=sys.stderr)
        return None


def run(args: argparse.Namespace) -> int:
    from ..errors import InspectorError
    from ..reporters.probe_table import render
    from ..reporters.summary import check_format

    check_format(args.format)
    first = True

    def one(path: str) -> int:
        nonlocal first
        graph = load_graph(path)
        graph.path = path
        try:
            report = run_probe(graph, path, args)
        except FileError:
            raise
        except InspectorError as exc:
            raise FileError(path, exc) from exc
        text = render(report, fmt=args.format, compact=len(args.models) > 1)
        if not first and args.format not in ("json", "csv"):
            sys.stdout.write("\n")
        first = False
        sys.stdout.write(text)
        sys.stdout.flush()
        return 0

    return for_each_file(args.models, one, debug=bool(getattr(args, "debug", False)))
