"""Command-line front end: argparse wiring, exit codes and one-line errors.

Each subcommand lives in ``inspector/commands/<name>.py`` with ``configure(parser)``
and ``run(args) -> int``.  This module only builds the parser, dispatches, and
turns :class:`~inspector.errors.InspectorError` into ``inspector: error: …`` plus
its exit code (2): ``--debug`` prints the traceback first and keeps the exit code.
``--version`` names the optional engines installed, read from package metadata
without importing them.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
from typing import TYPE_CHECKING, Any, NoReturn, Sequence

from . import __version__
from .errors import InspectorError, OutputError, error_line

if TYPE_CHECKING:  # pragma: no cover
    from _typeshed import SupportsWrite

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
    ("scan", "scan", "inventory models and folders of models: one row per model as JSON Lines, CSV or Parquet"),
)


# What ``--version`` names, by role: (shown name, distributions that provide it).  The engines
# run or convert models; matplotlib draws the report charts.
ENGINES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("onnx", ("onnx",)),
    ("tensorflow", ("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tensorflow-intel", "tf-nightly")),
    ("keras", ("keras", "keras-nightly")),
    ("onnxruntime", ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino", "onnxruntime-directml")),
)
EXTRAS: tuple[tuple[str, tuple[str, ...]], ...] = (("matplotlib", ("matplotlib",)),)


def _installed(distributions: tuple[str, ...]) -> str | None:
    """The version of the first of ``distributions`` installed (package metadata only: nothing is imported)."""
    from importlib import metadata  # only for --version: importlib.metadata imports email, zipfile … (~10 ms)

    for dist in distributions:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def version_text() -> str:
    """``inspector 0.1.0 (onnx 1.19.1, tensorflow 2.20.0, keras 3.12.0, onnxruntime 1.23.2; matplotlib 3.10.7)``:
    the versions of the optional packages found; the missing ones are left out."""
    groups = []
    for table in (ENGINES, EXTRAS):
        found = [f"{name} {version}" for name, dists in table if (version := _installed(dists)) is not None]
        if found:
            groups.append(", ".join(found))
    return f"inspector {__version__}" + (f" ({'; '.join(groups)})" if groups else "")


class _VersionAction(argparse.Action):
    """``--version``: print :func:`version_text` and exit 0 (computed only when asked for)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> NoReturn:
        parser._print_message(version_text() + "\n", sys.stdout)
        parser.exit(0)


class _Parser(argparse.ArgumentParser):
    """argparse with inspector's one-line error format and exit code 2."""

    def error(self, message: str) -> NoReturn:  # pragma: no cover - exercised through main
        self.exit(2, f"inspector: error: {message}\n")

    def _print_message(self, message: str, file: SupportsWrite[str] | None = None) -> None:
        """argparse's help, usage and ``--version`` text.  argparse drops a failed write silently; standard
        output that cannot take the text (a full disk) is :class:`~inspector.errors.OutputError` here (one
        line, exit 2), as for a command's output."""
        if not message or file is None or id(file) != id(sys.stdout):  # (``is``: mypy would narrow sys.stdout)
            super()._print_message(message, file)  # standard error: nowhere to tell of a failure
            return
        from .commands._options import write_output

        write_output(message, None, flush=True)


def build_parser(*, only: str | None = None) -> argparse.ArgumentParser:
    """The command-line parser (``only``: configure that command alone, the others are listed but their
    modules are not imported; a run needs the options of its own command only)."""
    parser = _Parser(prog="inspector", description=(
        "Open saved deep-learning models (Keras .keras/.h5/SavedModel, ONNX) without running them, "
        "summarize them exactly, and lint them."))
    parser.add_argument("--version", action=_VersionAction,
                        help="print the version and those of the optional engines found, then exit")
    parser.add_argument("--debug", action="store_true",
                        help="show tracebacks for errors (the exit codes stay the same)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module, help_text in COMMANDS:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show tracebacks for errors (the exit codes stay the same)")
        if only is not None and name != only:
            continue
        mod = importlib.import_module(f".commands.{module}", __package__)
        mod.configure(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command line; returns the exit code.  As the program (no ``argv``: ``inspector …``,
    ``python -m inspector``) it does not return: it ends the process itself (:func:`_end_program`)."""
    # A command's graphs hold no reference cycles (tests/test_onnx_speed.py checks that loading and
    # summarizing leave no cyclic garbage): the cyclic collector would only rescan millions of live layer
    # objects again and again (a third of a 162k-node summary's time).  Reference counting still frees
    # everything.  In library use the collector is switched back on afterwards and runs as usual; the program
    # ends without it (:func:`_end_program`).
    program = argv is None
    was_enabled = gc.isenabled()
    gc.disable()
    if program:
        from .lifetime import keep_for_the_run

        keep_for_the_run()
    try:
        code = _run(argv)
    finally:
        if was_enabled and not program:  # the program ends next: a collection now would only rescan
            gc.enable()
    if program:
        _end_program(code)
    return code


_output_failed = False
"""Standard output could not be written and :func:`_run` told so (:func:`_end_program` then tells it once)."""


def _end_program(code: int) -> NoReturn:
    """End the program with ``code`` once its output is flushed and its exit handlers (``atexit``,
    ``weakref.finalize``: temporary folders, remote sessions) have run, without the interpreter's teardown.

    What is still alive (the last graph, kept by :mod:`inspector.lifetime`; modules, protobuf
    descriptors) would otherwise be freed object by object: 0.3 s of a 162,000-node summary, for nothing.
    Files a command writes are closed by then (:mod:`inspector.fileio` writes them whole), so only standard
    output and error are flushed here.  A closed pipe (``inspector summary m | head``) is not an error, as in
    :func:`_run`; any other failure to write the output is, and ends with 2."""
    import atexit
    import os

    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except BrokenPipeError:
        pass
    except OSError as exc:
        error = OutputError(exc)
        if not _output_failed:  # (told already: what the command wrote is still in the buffer)
            _tell(error_line(str(error)))
        code = error.exit_code
    atexit._run_exitfuncs()
    _tell(None)
    os._exit(code)


def _tell(line: str | None) -> None:
    """Write ``line`` to standard error (if any) and flush it, ignoring a standard error that is gone."""
    try:
        if sys.stderr is not None:
            if line is not None:
                print(line, file=sys.stderr)
            sys.stderr.flush()
    except OSError:
        pass


def _run(argv: Sequence[str] | None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    command = next((w for w in words if not w.startswith("-")), None)  # (the global options take no value)
    parser = build_parser(only=command if command in {c[0] for c in COMMANDS} else None)
    args: argparse.Namespace | None = None
    try:
        args = parser.parse_args(argv)  # (--help and --version write here: their output may fail too)
        if not getattr(args, "command", None):
            parser.print_help(sys.stderr)
            return 2
        return int(args._run(args) or 0)
    except InspectorError as exc:
        if args is not None and args.debug:
            import traceback

            traceback.print_exc()
        print(error_line(str(exc)), file=sys.stderr)
        if isinstance(exc, OutputError):
            global _output_failed
            _output_failed = True
        return exc.exit_code
    except KeyboardInterrupt:  # pragma: no cover
        print("inspector: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # pragma: no cover - e.g. `inspector summary m | head`
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
