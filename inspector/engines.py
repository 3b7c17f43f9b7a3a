"""Where a per-file function runs: here (``local``) or as tasks on a Dask cluster (``dask``).

:func:`run_tasks` calls the same pure, picklable function ``func(item, options)`` on
every item, with the same per-file limits (they live inside ``func``), and returns
the results in the order of ``items`` whatever the engine.  A task that fails (an
exception escaping ``func``, a worker that dies) becomes that item's row through
``failed(item, reason)``, so one file never stops the others.

Dask rather than Ray: Dask is pure Python and a small install (``dl-inspector[dask]``:
``dask[distributed]`` and pyarrow), ``distributed.LocalCluster`` starts in-process in
about a second (the tests use it), and it runs on an existing cluster of
``dask-scheduler``/``dask-worker`` processes, Kubernetes (dask-kubernetes) or YARN
(dask-yarn).  Ray is a 100+ MB wheel with its own runtime (an object store, a raylet
per node) — much more than mapping a function over a list of paths needs.

The client only sends the paths (``s3://`` URLs for a bucket: the workers read the
models themselves, so they need the ``remote`` extra and the storage credentials)
and gathers the rows; :func:`write_partitions` writes them as a Parquet folder
(``inventory.parquet/part-00000.parquet`` …).

:func:`run_inventory` is the entry point for ``inspector scan --engine``: it expands
remote prefixes (``s3://bucket/models/``) into their model files, then runs the tasks.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TypeVar

from .errors import MissingDependency, UsageError
from .fileio import is_remote

T = TypeVar("T")
O = TypeVar("O")  # noqa: E741 - the options type
R = TypeVar("R")

ENGINES = ("local", "dask")
"""The values of ``--engine``."""

CONNECT_SECONDS = 30.0
"""How long to try to reach a Dask scheduler (``--scheduler``) before giving up."""


def run_tasks(func: Callable[[T, O], R], items: Sequence[T], options: O, *, engine: str = "local",
              scheduler: str | None = None, failed: Callable[[T, str], R],
              local: Callable[[Callable[[T, O], R], Sequence[T], O], Iterable[R]] | None = None) -> list[R]:
    """``func(item, options)`` for every item, in the order of ``items``.

    ``engine="local"`` runs them here, through ``local(func, items, options)`` when
    given (e.g. a process pool), else one after the other; ``engine="dask"`` submits
    them to the Dask scheduler at ``scheduler`` (``tcp://host:8786``), or to a
    :class:`distributed.LocalCluster` started for this run when it is ``None``."""
    if engine == "local":
        if scheduler is not None:
            raise UsageError("--scheduler needs --engine dask")
        if local is not None:
            return list(local(func, items, options))
        return [_guarded(func, item, options, failed) for item in items]
    if engine == "dask":
        return _run_dask(func, items, options, scheduler=scheduler, failed=failed)
    raise UsageError(f"unknown engine {engine!r} (choose from {', '.join(ENGINES)})")


def _guarded(func: Callable[[T, O], R], item: T, options: O, failed: Callable[[T, str], R]) -> R:
    try:
        return func(item, options)
    except Exception as exc:  # noqa: BLE001 - a task failure is that file's error row
        return failed(item, _reason(exc))


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"the task failed ({type(exc).__name__}{': ' + text[:200] if text else ''})"


def _client(scheduler: str | None) -> tuple[Any, Any]:
    """A Dask client (and the LocalCluster it owns, or ``None``)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise MissingDependency("--engine dask", extra="dask", package="dask[distributed]") from None
    if scheduler:
        try:
            return Client(scheduler, timeout=CONNECT_SECONDS), None
        except (OSError, TimeoutError) as exc:
            raise UsageError(f"cannot reach the Dask scheduler at {scheduler} ({exc})") from None
    cluster = LocalCluster(n_workers=min(4, os.cpu_count() or 1), threads_per_worker=1, processes=True,
                           dashboard_address=None)
    return Client(cluster), cluster


def _run_dask(func: Callable[[T, O], R], items: Sequence[T], options: O, *, scheduler: str | None,
              failed: Callable[[T, str], R], client: Any = None) -> list[R]:
    own = client is None
    cluster = None
    if own:
        client, cluster = _client(scheduler)
    try:
        return gather_in_order(client, func, items, options, failed=failed)
    finally:
        if own:
            client.close()
            if cluster is not None:
                cluster.close()


def gather_in_order(client: Any, func: Callable[[T, O], R], items: Sequence[T], options: O, *,
                    failed: Callable[[T, str], R]) -> list[R]:
    """Run the tasks on ``client`` (a :class:`distributed.Client`) and return their results
    in the order of ``items``; a failed task gives ``failed(item, reason)``."""
    if not items:
        return []
    shared = client.scatter(options, broadcast=True)
    futures = [client.submit(func, item, shared, pure=False) for item in items]
    results: list[R] = []
    for item, future in zip(items, futures, strict=True):
        try:
            results.append(future.result())
        except Exception as exc:  # noqa: BLE001 - the task raised, or its worker died
            results.append(failed(item, _reason(exc)))
    return results


def expand_remote(paths: Sequence[str]) -> list[str]:
    """``paths`` with each remote folder (a URL ending in ``/``) replaced by its model files."""
    from .remote import list_models

    out: list[str] = []
    for path in paths:
        if is_remote(path) and path.endswith("/"):
            out.extend(list_models(path))
        else:
            out.append(path)
    return out


def run_inventory(paths: Sequence[str], options: O, *, func: Callable[[str, O], R],
                  failed: Callable[[str, str], R], engine: str = "local", scheduler: str | None = None,
                  expand_local: Callable[[Sequence[str]], list[str]] | None = None,
                  local: Callable[[Callable[[str, O], R], Sequence[str], O], Iterable[R]] | None = None) -> list[R]:
    """The rows of the models in ``paths`` (remote prefixes listed, local folders expanded by
    ``expand_local``), computed by ``func`` on ``engine``, in sorted path order."""
    remote = expand_remote(paths)
    here = [p for p in remote if not is_remote(p)]
    found = sorted(set((expand_local(here) if expand_local else here) + [p for p in remote if is_remote(p)]))
    return run_tasks(func, found, options, engine=engine, scheduler=scheduler, failed=failed, local=local)


def write_partitions(rows: Sequence[R], folder: str | os.PathLike[str], *,
                     encode: Callable[[Sequence[R]], bytes], rows_per_part: int = 10_000) -> list[Path]:
    """Write ``rows`` as Parquet partitions ``folder/part-00000.parquet`` … (``encode`` turns
    a list of rows into one Parquet file's bytes).  The folder appears complete or not at
    all: the parts are written next to it, then moved in place (an old folder is replaced)."""
    target = Path(folder)
    parent = target.parent if str(target.parent) else Path(".")
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=parent))
    try:
        parts = []
        chunks = [rows[i:i + rows_per_part] for i in range(0, len(rows), rows_per_part)] or [rows[:0]]
        for n, chunk in enumerate(chunks):
            part = tmp / f"part-{n:05d}.parquet"
            part.write_bytes(encode(chunk))
            parts.append(target / part.name)
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            raise UsageError(f"{target} exists and is not a folder: refusing to replace it with Parquet partitions")
        os.replace(tmp, target)
        return parts
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
