"""One module per CLI subcommand: ``configure(parser)`` and ``run(args) -> int``.

Commands only wire: load the graph, call analysis/rules, hand results to a
reporter, write to stdout.  Errors are raised as InspectorError and printed by
``inspector.cli``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Iterable, TypeVar

from ..errors import InspectorError

T = TypeVar("T")


class FileError(InspectorError):
    """An InspectorError tied to the file it happened on (prints ``FILE: message``)."""

    def __init__(self, path: str, error: InspectorError) -> None:
        super().__init__(f"{path}: {error}")
        self.path = path
        self.error = error
        self.exit_code = error.exit_code


def load_graph(path: str):
    """Load one model, tagging any error with its path."""
    from ..loaders import load

    try:
        return load(Path(path))
    except InspectorError as exc:
        raise FileError(path, exc) from exc


def for_each_file(paths: Iterable[str], action: Callable[[str], int], *, debug: bool = False) -> int:
    """Run ``action`` on every path, report each failure on one line, keep going;
    return the worst exit code."""
    worst = 0
    for path in paths:
        try:
            code = action(path)
        except InspectorError as exc:
            if debug:
                raise
            msg = str(exc) if isinstance(exc, FileError) else f"{path}: {exc}"
            print(f"inspector: error: {msg}", file=sys.stderr)
            code = exc.exit_code
        worst = max(worst, code)
    return worst
