"""Running one picklable per-file function over many files in a process pool, results in order.

:func:`run_ordered` yields ``func(item, options)`` for every item in the order given,
each as soon as it and every item before it are done (streaming), whatever order the
workers finish in.  ``jobs <= 1``, or fewer than ``2 * jobs`` items, run in this process, as before.
The pool uses the ``forkserver`` start method where there is one, else ``spawn``: the
workers start from a fresh interpreter, so nothing the parent imported (never
TensorFlow) or monkey-patched is inherited, and per-file limits apply in each worker.
A worker that dies (a crash in native code, the out-of-memory killer) costs only the
file it was reading: that item becomes ``crashed(item, message)`` and the rest go on in
a new pool.  :func:`default_jobs` is ``INSPECTOR_JOBS`` or the number of CPUs.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence, TypeVar

from .errors import UsageError

if TYPE_CHECKING:  # pragma: no cover - the pool is imported only when files are read in workers
    from concurrent.futures import Future

T = TypeVar("T")
O = TypeVar("O")  # noqa: E741 - the options' type
R = TypeVar("R")

CRASH_MESSAGE = "the worker process reading this file died (a crash in native code, or killed for memory)"


def default_jobs() -> int:
    """``INSPECTOR_JOBS`` when set (a whole number ≥ 1), else the CPUs this process may use."""
    text = os.environ.get("INSPECTOR_JOBS", "").strip()
    if text:
        if not text.isdigit() or int(text) < 1:
            raise UsageError(f"INSPECTOR_JOBS must be a whole number of at least 1, not {text!r}")
        return int(text)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


PRELOAD: tuple[str, ...] = (
    "numpy", "h5py", "networkx", "inspector.cache", "inspector.analysis.duplicates",
    "inspector.loaders.keras_shapes", "inspector.loaders.keras_v3", "inspector.loaders.keras_h5",
    "inspector.loaders.onnx",
    "inspector.analysis.weights", "inspector.analysis.state", "inspector.analysis.macs", "inspector.analysis.card",
    "inspector.lint_run", "inspector.inventory", "inspector.rules.engine", "inspector.rules.registry",
    *(f"inspector.rules.{family}" for family in ("init", "activations", "batchnorm", "normalization", "numerics",
                                                 "regularization", "graph", "security", "history", "model",
                                                 "probe")),
)
"""Imported once by the fork server, so each worker starts with them (never TensorFlow)."""


ONE_THREAD = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
"""Set to 1 for the workers (unless set already): each is one of ``jobs`` processes, and a BLAS thread
pool per worker only makes them fight over the cores (64 small ONNX models linted 1.9× slower with it)."""


def _context() -> Any:
    """A ``forkserver`` context whose server imports :data:`PRELOAD` (each worker then forks from it
    ready to work), else ``spawn``."""
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():  # pragma: no cover - Windows, macOS < 3.14
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(PRELOAD))
    return ctx


def warm_up(jobs: int) -> None:
    """Start the fork server now (with ``jobs`` > 1), so its imports overlap the caller's own work
    (reading the configuration, walking folders, hashing for the cache)."""
    if jobs <= 1:
        return
    ctx = _context()  # (the server holds standard output open until it has started: start it only for work)
    if ctx.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        saved = {name: os.environ.get(name) for name in ONE_THREAD}
        os.environ.update({name: "1" for name, value in saved.items() if value is None})
        try:
            forkserver.ensure_running()  # (the server and its workers take the environment of this moment)
        finally:
            for name, value in saved.items():
                if value is None:
                    del os.environ[name]


def run_ordered(func: Callable[[T, O], R], items: Sequence[T], options: O, *, jobs: int,
                crashed: Callable[[T, str], R]) -> Iterator[R]:
    """``func(item, options)`` for each of ``items``, yielded in order (see the module docstring).

    ``func`` and ``options`` must be picklable (a top-level function, frozen dataclasses)
    when ``jobs > 1``; ``func`` should return its errors rather than raise them."""
    if jobs <= 1 or len(items) < 2 * jobs:  # a few files: starting workers would cost more than it saves
        for item in items:
            yield func(item, options)
        return
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    warm_up(jobs)
    pending = list(range(len(items)))
    while pending:
        broken_at: int | None = None
        ready: dict[int, R] = {}
        with ProcessPoolExecutor(max_workers=min(jobs, len(pending)), mp_context=_context(),
                                 initializer=_worker_gc()) as pool:
            futures: dict[int, Future[R]] = {i: pool.submit(func, items[i], options) for i in pending}
            for pos, i in enumerate(pending):
                try:
                    result = futures[i].result()
                except BrokenProcessPool:
                    broken_at, ready = pos, _finished(futures)
                    break
                yield result
        if broken_at is None:
            return
        # The pool broke while this item was awaited: find out, alone, whether it killed the worker.
        yield _alone(func, items[pending[broken_at]], options, crashed)
        rest = pending[broken_at + 1:]
        while rest and rest[0] in ready:  # what other workers finished before the break is kept
            yield ready.pop(rest.pop(0))
        pending = rest


def _worker_gc() -> Callable[[], None] | None:
    """What each worker runs first: with the cyclic garbage collector off here (the command line turns it off,
    see :func:`inspector.cli.main`), it is turned off in the workers too; a library caller keeps it."""
    import gc

    return None if gc.isenabled() else gc.disable


def _finished(futures: dict[int, Future[R]]) -> dict[int, R]:
    return {i: f.result() for i, f in futures.items() if f.done() and not f.cancelled() and f.exception() is None}


def _alone(func: Callable[[T, O], R], item: T, options: O, crashed: Callable[[T, str], R]) -> R:
    """``func(item, options)`` in a pool of its own: its result, or ``crashed`` when it kills the worker."""
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    with ProcessPoolExecutor(max_workers=1, mp_context=_context(), initializer=_worker_gc()) as pool:
        try:
            return pool.submit(func, item, options).result()
        except BrokenProcessPool:
            return crashed(item, CRASH_MESSAGE)
