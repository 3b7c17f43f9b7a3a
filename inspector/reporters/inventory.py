"""``inspector scan`` inventories: rows as JSON Lines, CSV or Parquet.

JSON Lines keep the nested columns (objects, arrays) as JSON; CSV and Parquet hold
them as JSON text in one cell, so every format has the same columns
(:data:`inspector.inventory.COLUMNS`) in the same order.  Parquet needs pyarrow
(``pip install 'dl-inspector[parquet]'``).
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Iterable

from ..errors import MissingDependency
from ..inventory import COLUMNS, InventoryRow
from ..textsafe import csv_row, json_text, visible

FORMATS: tuple[str, ...] = ("jsonl", "csv", "parquet")
SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_NESTED = {name for name, kind, _ in COLUMNS if kind in ("object", "array")}


def jsonl_line(row: InventoryRow) -> str:
    """One row as a JSON Lines line."""
    return json_text(json.dumps(row.as_record(), ensure_ascii=False)) + "\n"


def csv_header() -> str:
    return _csv_line([name for name, _, _ in COLUMNS])


def csv_line(row: InventoryRow) -> str:
    """One row as a CSV line (nested columns as JSON text; null as an empty cell)."""
    return _csv_line([_flat(name, value) for name, value in row.as_record().items()])


def _flat(name: str, value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if name in _NESTED:
        return json.dumps(value, ensure_ascii=False)
    return value


def _csv_line(cells: list[Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(csv_row([visible(c) if isinstance(c, str) else c for c in cells]))
    return buf.getvalue()


def parquet_bytes(rows: Iterable[InventoryRow]) -> bytes:
    """The rows as one Parquet file (a :class:`MissingDependency` without pyarrow)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingDependency("writing Parquet", extra="parquet", package="pyarrow") from None
    types = {"string": pa.string(), "integer": pa.int64(), "boolean": pa.bool_()}
    fields = [pa.field(name, pa.string() if name in _NESTED else types[kind.split("|")[0]])
              for name, kind, _ in COLUMNS]
    records = [row.as_record() for row in rows]
    columns = {name: [json.dumps(r[name], ensure_ascii=False) if name in _NESTED else r[name] for r in records]
               for name, _, _ in COLUMNS}
    table = pa.table(columns, schema=pa.schema(fields))
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return bytes(sink.getvalue().to_pybytes())
