"""Running one action over many model files: each failure is one line on stderr, the run goes on.

Every command that takes several files (``summary``, ``info``, ``lint``,
``probe``, ``history``) goes through :func:`for_each_file`, so they report a bad
file the same way and exit with the worst code.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Iterable

from .errors import FileError, InspectorError
from .ir import ModelGraph
from .remote import is_remote


def load_graph(path: str) -> ModelGraph:
    """Load one model, tagging any error with its path (:class:`FileError`).  A remote
    URL (``s3://``, ``gs://``, ``https://``) is read by byte ranges (:mod:`inspector.remote`):
    the metadata now, the rest only when a tensor is read."""
    from .loaders import load

    try:
        if is_remote(path):
            from . import remote

            graph: ModelGraph = remote.load(path)
            return graph
        return load(Path(path))
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
            print(f"inspector: error: {msg}", file=sys.stderr)
            code = exc.exit_code
        worst = max(worst, code)
    return worst
