"""A small per-file row function for the engine tests (top level, so it pickles)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    path: str
    format: str | None = None
    params: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class Options:
    fail_on: str = "boom"


def row(path: str, options: Options) -> Row:
    """The row of ``path``; raises (a task failure) when ``options.fail_on`` is in the path."""
    from inspector.analysis.params import count_params
    from inspector.batch import load_graph
    from inspector.errors import InspectorError

    if options.fail_on in path:
        raise RuntimeError(f"task for {path} blew up")
    try:
        graph = load_graph(path)
    except InspectorError as exc:
        return Row(path, error=str(exc))
    return Row(path, graph.format, count_params(graph).totals.params)


def failed(path: str, reason: str) -> Row:
    return Row(path, error=reason)


def parquet(rows: object) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist([r.__dict__ for r in rows],  # type: ignore[attr-defined]
                                 schema=pa.schema([("path", pa.string()), ("format", pa.string()),
                                                   ("params", pa.int64()), ("error", pa.string())]))
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return bytes(sink.getvalue().to_pybytes())
