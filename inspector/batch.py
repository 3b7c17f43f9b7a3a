"""Running one action over many model files: each failure is one line on stderr, the run goes on.

Every command that takes several files (``summary``, ``info``, ``lint``,
``probe``, ``history``) goes through :func:`for_each_file`, so they report a bad
file the same way and exit with the worst code.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Iterable, Mapping

from .errors import FileError, InspectorError
from .ir import ModelGraph
from .textsafe import visible


def load_graph(path: str, *, dims: Mapping[str, int] | None = None,
               dims_found: set[str] | None = None) -> ModelGraph:
    """Load one model (``dims``: symbolic dims bound to numbers, see :func:`inspector.loaders.load`),
    tagging any error with its path (:class:`FileError`)."""
    from .loaders import load

    try:
        return load(Path(path), dims=dims, dims_found=dims_found)
    except InspectorError as exc:
        raise FileError(path, exc) from exc


def for_each_file(paths: Iterable[str], action: Callable[[str], int], *, debug: bool = False) -> int:
    """Run ``action`` on every path, report each failure on one line, keep going;
    return the worst exit code (``debug`` re-raises the first failure instead)."""
    worst = 0
    for path in paths:
        try:
            code = action(path)
        except InspectorError as exc:
            if debug:
                raise
            msg = str(exc) if isinstance(exc, FileError) else f"{path}: {exc}"
            print(f"inspector: error: {visible(msg)}", file=sys.stderr)
            code = exc.exit_code
        worst = max(worst, code)
    return worst
