"""Command-line options shared by several commands, and writing a command's output.

One definition each of: the output format option (``-f/--format`` and its other
spelling ``--output-format``, one destination ``args.format``); the finding options
(``--select`` … ``--statistics``) and how they resolve against ``[tool.inspector]``;
the probe's batch options; ``-o/--output`` with its atomic write and the check that
it does not name one of the command's inputs; when text output is coloured; and a
model's size on disk (``info`` and ``report`` show it).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

from ..errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    from ..config import LintConfig
    from ..probe_run import ProbeOptions

# The configuration (tomllib, discovery), the finding and lint-format tables, --dim's bounds and the probe's
# options are imported by the functions that use them: ``summary`` starts without any of them.


def split_codes(values: list[str] | None) -> list[str] | None:
    """``--select A,B --select C`` as ``[A, B, C]`` (``None`` when the option was not given)."""
    if values is None:
        return None
    return [part.strip() for v in values for part in v.split(",") if part.strip()]


def add_format_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup, *,
                      choices: Sequence[str] | None, default: str | None, help: str) -> None:
    """``-f/--format FORMAT``, also spelled ``--output-format`` (ruff's name): one option, ``args.format``.

    ``choices`` are the names of the command's format registry; ``None`` when the command
    checks the name itself (the summary and probe tables accept every tabulate format)."""
    parser.add_argument("-f", "--format", "--output-format", dest="format", metavar="FORMAT",
                        choices=tuple(choices) if choices is not None else None, default=default,
                        help=f"{help}; --output-format is the same option")


def add_output_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup, *,
                      help: str = "write to FILE (atomically) instead of standard output") -> None:
    """``-o/--output FILE``: see :func:`write_output` and :func:`check_output`."""
    parser.add_argument("-o", "--output", metavar="FILE", help=help)


def check_output(output: str | None, inputs: Iterable[str | None], *, what: str = "the output") -> None:
    """A :class:`UsageError` when ``output`` (``-o FILE``, ``--write-baseline FILE`` …) would destroy one of
    the command's inputs (a model, a log, a batch, a baseline): the same file (by path, symbolic link or hard
    link), a file inside an input folder (a SavedModel), or an external-data file an input ONNX model reads."""
    if not output:
        return
    from ..outputguard import clash

    for item in inputs:
        if item:
            problem = clash(output, item)
            if problem:
                raise UsageError(f"{output}: refusing to write {what} {problem}")


def add_config_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup, *, config_help: str) -> None:
    """``--config FILE`` and ``--isolated``: which ``[tool.inspector]`` table applies (see :func:`load_config`)."""
    parser.add_argument("--config", metavar="FILE", help=config_help)
    parser.add_argument("--isolated", action="store_true", help="ignore every configuration file")


def load_config_option(args: argparse.Namespace) -> LintConfig:
    """The configuration the ``--config``/``--isolated`` options choose (a warning on
    stderr when an automatically found file tried to turn SEC rules off)."""
    from ..config import load_config, security_warning

    config = load_config(args.config, isolated=args.isolated)
    warning = security_warning(config)
    if warning:
        print(f"inspector: warning: {warning}", file=sys.stderr)
    return config


def add_finding_options(parser: argparse.ArgumentParser, *, select_help: str, ignore_help: str) -> None:
    """The options every command that reports findings shares (ruff's names)."""
    from ..findings import FAIL_ON
    from ..reporters import lint as lint_formats

    parser.add_argument("--select", action="append", metavar="CODES", help=select_help)
    parser.add_argument("--ignore", action="append", metavar="CODES", help=ignore_help)
    parser.add_argument("--fail-on", choices=FAIL_ON, default=None,
                        help="lowest severity that makes the exit code 1 (default: error)")
    add_format_option(parser, choices=lint_formats.FORMATS, default=None,
                      help="text (default), json, sarif, junit or github (workflow annotations)")
    add_output_option(parser, help="write the report to FILE (atomically) instead of standard output")
    add_config_options(parser, config_help="read options from FILE instead of the nearest pyproject.toml "
                                           "[tool.inspector]")
    parser.add_argument("--statistics", action="store_true",
                        help="text output: add the number of findings per rule")


@dataclass(frozen=True, slots=True)
class FindingOptions:
    """The finding options of one run, resolved against the configuration file."""

    config: LintConfig
    select: list[str] | None
    ignore: list[str] | None
    fail_on: str
    fmt: str
    debug: bool


def resolve_finding_options(args: argparse.Namespace) -> FindingOptions:
    """Flags over ``[tool.inspector]``."""
    config = load_config_option(args)
    return FindingOptions(
        config=config, select=split_codes(args.select), ignore=split_codes(args.ignore),
        fail_on=args.fail_on or config.fail_on,
        fmt=args.format or config.output_format,
        debug=bool(getattr(args, "debug", False)))


def whole_number(*, minimum: int, why: str) -> Callable[[str], int]:
    """An argparse ``type`` for a whole number of at least ``minimum`` (``why`` is the
    error when it is smaller, e.g. ``"must be at least 1"``)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(why)
        return value

    return parse


_DIM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")


def dim_binding(text: str) -> tuple[str, int]:
    """An argparse ``type`` for ``--dim NAME=VALUE``: a symbol name and a positive whole number."""
    from ..loaders.bind import MAX_DIM

    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not _DIM_NAME.match(name):
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE (e.g. seq=128), got {text!r}")
    try:
        number = int(value.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{name}: expected a positive whole number, got {value!r}") from None
    if not 1 <= number <= MAX_DIM:
        raise argparse.ArgumentTypeError(f"{name}: expected a whole number from 1 to {MAX_DIM:,}, got {value!r}")
    return name, number


def add_dim_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--dim NAME=VALUE`` (repeatable): bind a symbolic dim before shapes and MACs are computed."""
    parser.add_argument("--dim", dest="dims", action="append", type=dim_binding, metavar="NAME=VALUE",
                        help="bind the symbolic dim NAME (an ONNX dim_param such as seq; 'batch' for the leading "
                             "None of a Keras model) to VALUE before shapes and MACs are computed; repeatable")


def dims_option(args: argparse.Namespace) -> dict[str, int]:
    """The ``--dim`` bindings of the command line (a :class:`UsageError` when one name gets two values)."""
    dims: dict[str, int] = {}
    for name, value in getattr(args, "dims", None) or ():
        if dims.get(name, value) != value:
            raise UsageError(f"--dim {name}: bound twice ({dims[name]} and {value})")
        dims[name] = value
    return dims


def add_batch_options(parser: argparse.ArgumentParser, *, cache: bool = True) -> None:
    """``--jobs N`` (worker processes; default ``INSPECTOR_JOBS`` or the number of CPUs) and, with
    ``cache``, ``--no-cache`` (see :mod:`inspector.parallel` and :mod:`inspector.cache`)."""
    parser.add_argument("-j", "--jobs", type=whole_number(minimum=1, why="must be at least 1"), default=None,
                        metavar="N", help="models read at once, in worker processes (default: INSPECTOR_JOBS or "
                                          "the number of CPUs; 1: one after the other, in this process)")
    if cache:
        parser.add_argument("--no-cache", action="store_true",
                            help="do not read or write the result cache (.inspector_cache/, or INSPECTOR_CACHE_DIR)")


def jobs_option(args: argparse.Namespace) -> int:
    """The ``--jobs`` value, or its default (:func:`inspector.parallel.default_jobs`)."""
    from ..parallel import default_jobs

    return int(args.jobs) if args.jobs is not None else default_jobs()


class ModelOutputs:
    """The results of a command run over several models, in order: without ``-o`` each
    appears on standard output as soon as it is ready; with ``-o FILE`` they are written
    together, atomically, by :meth:`close`.  Text formats are separated by a blank line;
    JSON and CSV stream one document per model (see ``streams_as_lines``)."""

    def __init__(self, output: str | None, *, fmt: str) -> None:
        from ..reporters.summary import streams_as_lines

        self.output = output
        self.separate = not streams_as_lines(fmt)
        self.parts: list[str] = []

    def add(self, text: str) -> None:
        if self.parts and self.separate:
            text = "\n" + text
        self.parts.append(text)
        if not self.output:
            write_output(text, None, flush=True)

    def close(self) -> None:
        if self.output:
            write_output("".join(self.parts), self.output)


def add_probe_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup, *, trust: bool = True) -> None:
    """The options that choose the probe's batch (``probe``, ``lint --probe``, ``report --probe``)."""
    parser.add_argument("--inputs", metavar="FILE",
                        help="a batch to feed: .npy (one input) or .npz (one array per input, by name or arr_0…); "
                             "default: synthetic data (standard normal, or 0..255 for inputs the model rescales)")
    parser.add_argument("--batch-size", type=whole_number(minimum=1, why="must be at least 1"), default=8, metavar="N",
                        help="synthetic samples to draw, and samples per forward pass (default 8)")
    parser.add_argument("--seed", type=whole_number(minimum=0, why="must be 0 or more"), default=0, metavar="N",
                        help="random seed of the synthetic inputs (default 0)")
    if trust:
        parser.add_argument("--trust", action="store_true",
                            help="run the model even if the static safety scan found code or outside references "
                                 "in it (SEC findings): only for files whose author you trust")


def probe_options(args: argparse.Namespace) -> ProbeOptions:
    """The probe options of the command line (see :func:`add_probe_arguments`)."""
    from ..probe_run import ProbeOptions

    return ProbeOptions(inputs=args.inputs, batch_size=args.batch_size, seed=args.seed,
                        trust=bool(getattr(args, "trust", False)))


def use_color(fmt: str, output: str | None) -> bool:
    """Colour text output only on a terminal, and never with ``NO_COLOR`` or ``TERM=dumb``."""
    return (fmt == "text" and not output and sys.stdout.isatty()
            and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb")


def write_output(text: str | bytes, output: str | None, *, flush: bool = False) -> None:
    """``text`` to the file ``output`` (atomically), or to standard output (``flush``: at once;
    bytes only go to a file).  Standard output that cannot take it (a full disk) is one error line; a closed
    pipe (``| head``) is left to the command line, which ends quietly."""
    if output:
        from ..fileio import write_atomic

        write_atomic(output, text)
        return
    try:
        _write_stdout(text if isinstance(text, str) else text.decode("utf-8"))
        if flush:
            sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        from ..errors import OutputError

        raise OutputError(exc) from exc


WRITE_CHUNK = 1 << 18
"""Characters of ASCII text written to standard output at a time."""


def _write_stdout(text: str) -> None:
    """``text`` to standard output, ASCII text a chunk at a time: standard output encodes what it is given
    whole, and a 37 MB listing encoded at once takes 37 MB of fresh memory (9,000 page faults), a chunk
    the same few pages again.  (Text with other characters goes whole: one that cannot be encoded then
    fails before any of it is written, as before.)"""
    if len(text) <= WRITE_CHUNK or not text.isascii():
        sys.stdout.write(text)
        return
    write = sys.stdout.write
    for start in range(0, len(text), WRITE_CHUNK):
        write(text[start:start + WRITE_CHUNK])


def add_engine_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--engine local|dask`` and ``--scheduler ADDRESS`` (``scan``; see :mod:`inspector.engines`)."""
    from ..engines import ENGINES

    parser.add_argument("--engine", choices=ENGINES, default="local",
                        help="where the per-file work runs: here (local, with --jobs) or as tasks on a Dask "
                             "cluster (dask; needs dl-inspector[dask])")
    parser.add_argument("--scheduler", metavar="ADDRESS", default=None,
                        help="--engine dask: the Dask scheduler to use (tcp://host:8786); default: a local "
                             "cluster started for this run")
