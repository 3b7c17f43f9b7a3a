"""Command-line front end: argparse wiring, exit codes and one-line errors.

Each subcommand lives in ``inspector/commands/<name>.py`` with ``configure(parser)``
and ``run(args) -> int``.  This module only builds the parser, dispatches, and
turns :class:`~inspector.errors.InspectorError` into ``inspector: error: …`` plus
exit code 2 (a traceback only with ``--debug``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NoReturn, Sequence

from . import __version__
from .errors import InspectorError

# (command, module under inspector.commands, one-line help)
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("summary", "summary", "print the layer table of a model (Keras-style by default)"),
    ("info", "info", "print the model card: format, producer, opsets, inputs, outputs, totals"),
    ("lint", "lint", "check models for initialization, activation, normalization and safety problems"),
    ("rules", "rules", "list every lint rule"),
    ("rule", "rule", "show the documentation of one lint rule"),
    ("probe", "probe", "run a model on one batch and measure its activations (saturation, dead units, NaN/Inf)"),
    ("history", "history", "diagnose a training log (CSVLogger CSV, History JSON, TensorBoard events)"),
    ("report", "report", "write a model report people read: HTML (charts inline) or Markdown (PR comments, CI)"),
    ("graph", "graph", "export the layer graph as GraphML, networkx JSON, Graphviz DOT or Mermaid"),
    ("diff", "diff", "compare two models: layers added, removed and changed, totals, MACs, lint findings"),
)


class _Parser(argparse.ArgumentParser):
    """argparse with inspector's one-line error format and exit code 2."""

    def error(self, message: str) -> NoReturn:  # pragma: no cover - exercised through main
        self.exit(2, f"inspector: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="inspector", description=(
        "Open saved deep-learning models (Keras .keras/.h5/SavedModel, ONNX) without running them, "
        "summarize them exactly, and lint them."))
    parser.add_argument("--version", action="version", version=f"inspector {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module, help_text in COMMANDS:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show tracebacks for errors")
        mod = importlib.import_module(f".commands.{module}", __package__)
        mod.configure(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args._run(args) or 0)
    except InspectorError as exc:
        if args.debug:
            raise
        print(f"inspector: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:  # pragma: no cover
        print("inspector: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # pragma: no cover - e.g. `inspector summary m | head`
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
