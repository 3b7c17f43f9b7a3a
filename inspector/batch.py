"""Running one action over many model files: each failure is one line on stderr, the run goes on.

Every command that takes several files (``summary``, ``info``, ``lint``,
``probe``, ``history``) goes through :func:`for_each_file` or :func:`run_files`, so they
report a bad file the same way and exit with the worst code.  :func:`model_paths`
expands folders into the models they hold (:mod:`inspector.discover`); :func:`run_files`
runs a picklable per-file function in worker processes, through the result cache, with
results in order.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Generic, Iterable, Iterator, Mapping, Sequence, TypeVar

from . import lifetime
from .errors import FileError, InspectorError, OutputError, error_line
from .fileio import is_remote
from .ir import ModelGraph

if TYPE_CHECKING:  # pragma: no cover
    from .cache import ResultCache
    from .discover import Discovery

O = TypeVar("O")  # noqa: E741 - the options' type
R = TypeVar("R")


def model_paths(paths: Sequence[str], *, discovery: Discovery | None = None) -> list[str]:
    """``paths`` with each plain folder replaced by the models found in it, sorted
    (:func:`inspector.discover.expand_paths`; ``discovery`` default: the nearest
    ``[tool.inspector]``'s, read only when a folder is walked)."""
    import os

    from .discover import expand_paths, is_model_folder

    if discovery is None and any(os.path.isdir(p) and not is_model_folder(p) for p in paths):
        from .config import load_config

        discovery = load_config().discovery
    return expand_paths(paths, settings=discovery)


def load_graph(path: str, *, dims: Mapping[str, int] | None = None,
               dims_found: set[str] | None = None) -> ModelGraph:
    """Load one model (``dims``: symbolic dims bound to numbers, see :func:`inspector.loaders.load`),
    tagging any error with its path (:class:`FileError`).  A remote URL (``s3://``, ``gs://``,
    ``https://``) is read by byte ranges (:mod:`inspector.remote`): the metadata now, the rest only
    when a tensor is read."""
    from .loaders import load

    lifetime.let_go()  # what the program kept of the previous file goes before this one is loaded
    try:
        if is_remote(path):
            from . import remote

            graph: ModelGraph = remote.load(path, dims=dims, dims_found=dims_found)
        else:
            graph = load(Path(path), dims=dims, dims_found=dims_found)
    except InspectorError as exc:
        raise FileError(path, exc) from exc
    lifetime.hold(graph)  # the program frees it only before the next load (:mod:`inspector.lifetime`)
    return graph


def for_each_file(paths: Iterable[str], action: Callable[[str], int], *, debug: bool = False) -> int:
    """Run ``action`` on every path, report each failure on one line, keep going;
    return the worst exit code (``debug`` re-raises the first failure instead)."""
    worst = 0
    for path in paths:
        try:
            code = action(path)
        except OutputError:
            raise  # nowhere to write the next file's either
        except InspectorError as exc:
            if debug:
                raise
            msg = str(exc) if isinstance(exc, FileError) else f"{path}: {exc}"
            print(error_line(msg), file=sys.stderr)
            code = exc.exit_code
        worst = max(worst, code)
    return worst


@dataclass(frozen=True)
class Cached(Generic[R]):
    """How :func:`run_files` keeps results of one kind in a :class:`~inspector.cache.ResultCache`:
    ``encode`` a result as JSON-able data (``None``: do not keep it, e.g. a failure), ``decode`` it
    back (``None`` or an exception: the entry is not valid and is ignored)."""

    cache: ResultCache
    encode: Callable[[R], Mapping[str, Any] | None]
    decode: Callable[[str, Mapping[str, Any]], R | None]


def _decoded(cached: Cached[R], path: str, key: str | None) -> R | None:
    """The result stored for ``path`` under ``key``, or ``None`` (none, or not valid: never trusted)."""
    stored = cached.cache.get(key) if key else None
    if stored is None:
        return None
    try:
        return cached.decode(path, stored)
    except (KeyError, TypeError, ValueError):
        return None


def run_files(func: Callable[[str, O], R], paths: Sequence[str], options: O, *, jobs: int,
              crashed: Callable[[str, str], R], cached: Cached[R] | None = None,
              label: str = "inspector") -> Iterator[R]:
    """``func(path, options)`` for every path, yielded in the order of ``paths`` as soon as each is
    ready: results found in ``cached`` are not computed again, the others run in ``jobs`` worker
    processes (:func:`inspector.parallel.run_ordered`) and are stored.  A progress bar goes to
    stderr when it is a terminal and the run lasts over two seconds."""
    from .reporters.progress import ProgressLine

    keys: list[str | None] = [None] * len(paths)
    hits: dict[int, R] = {}
    if cached is not None:
        for i, path in enumerate(paths):
            keys[i] = key = cached.cache.key(path)
            result = _decoded(cached, path, key)
            if result is not None:
                hits[i] = result
            elif i + 1 - len(hits) == 2 * jobs > 2:  # enough misses for workers: start them while hashing the rest
                from .parallel import warm_up

                warm_up(jobs)
    misses = [i for i in range(len(paths)) if i not in hits]
    computed: Iterator[R] = iter(())
    if misses:  # (a run answered by the cache alone does not import the process pool)
        from .parallel import run_ordered, warm_up

        if len(misses) >= 2 * jobs:
            warm_up(jobs)
        computed = run_ordered(func, [paths[i] for i in misses], options, jobs=jobs, crashed=crashed)
    with ProgressLine(label, delay=2.0) as progress:
        for i in range(len(paths)):
            if i in hits:
                result = hits.pop(i)
            else:
                result = next(computed)
                key = keys[i]
                if cached is not None and key is not None:
                    doc = cached.encode(result)
                    if doc is not None:
                        cached.cache.put(key, doc)
            progress("files", i + 1, len(paths))
            yield result
