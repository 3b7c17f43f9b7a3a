"""Use case "inventory a model collection" (``inspector scan``): one row of facts per model.

:func:`scan_model` is a pure, picklable top-level function ``(path, ScanOptions) ->
InventoryRow``: it never raises for a model that cannot be read (the row carries the
error), so a process pool — or a distributed engine running it as tasks — can call it
on any path.  :func:`scan_files` runs it over files and folders, in order, in worker
processes and through the result cache.  :data:`COLUMNS` is the row's schema, in column
order (the README documents it); :mod:`inspector.reporters.inventory` writes the rows as
JSON Lines, CSV or Parquet.

    >>> from inspector.inventory import ScanOptions, scan_model
    >>> row = scan_model("model.keras", ScanOptions())
    >>> row.params, row.state, row.as_record()["findings_by_code"]
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

from .errors import FileError, InspectorError
from .fileio import is_remote

if TYPE_CHECKING:  # pragma: no cover
    from .batch import Cached
    from .config import LintConfig
    from .ir import ModelGraph

COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("path", "string", "the model's path, as given or found in a folder"),
    ("format", "string|null", "keras, keras-h5, savedmodel or onnx (null: unreadable)"),
    ("name", "string|null", "the model's name"),
    ("file_size", "integer|null", "bytes on disk (a folder: its files)"),
    ("sha256", "string|null", "SHA-256 of the file (a folder: of its files' relative paths and bytes; "
                               "ONNX: with its external data)"),
    ("params", "integer|null", "parameters"),
    ("trainable", "integer|null", "trainable parameters"),
    ("non_trainable", "integer|null", "non-trainable parameters"),
    ("constants", "integer|null", "stored constants that are not parameters"),
    ("param_bytes", "integer|null", "bytes of the parameters"),
    ("bytes_by_dtype", "object", "{dtype: bytes} of the parameters"),
    ("macs", "integer|null", "multiply-accumulates for one sample (the known layers' sum)"),
    ("macs_complete", "boolean|null", "true when every layer's MACs are known"),
    ("macs_formula", "string|null", "the MACs as a formula in the model's symbolic dims (`137728·seq + 256·seq²`) "
                                    "when some are unbound (see --dim); null otherwise"),
    ("inputs", "array", "[{name, shape, dtype}] of the model's inputs"),
    ("outputs", "array", "[{name, shape, dtype}] of the model's outputs"),
    ("errors", "integer", "lint findings of severity error"),
    ("warnings", "integer", "lint findings of severity warning"),
    ("infos", "integer", "lint findings of severity info"),
    ("findings_by_code", "object", "{rule code: findings}"),
    ("sec_codes", "array", "the SEC codes found (sorted): what would run or be opened if a framework loaded it"),
    ("state", "string|null", "trained, untrained or unknown (analysis/state.py)"),
    ("error", "string|null", "why the model could not be read (then the facts are null)"),
)
"""(column, JSON type, meaning) of an inventory row, in order."""


@dataclass(frozen=True)
class ScanOptions:
    """What :func:`scan_model` needs besides the path (picklable)."""

    config: LintConfig | None = None
    select: Sequence[str] | None = None
    ignore: Sequence[str] | None = None
    dims: Mapping[str, int] = field(default_factory=dict)
    """Bindings of symbolic dims (``--dim NAME=VALUE``), applied when each model is loaded."""


@dataclass(frozen=True)
class InventoryRow:
    """One model's facts (see :data:`COLUMNS`); ``error`` set and the facts empty when it failed."""

    path: str
    format: str | None = None
    name: str | None = None
    file_size: int | None = None
    sha256: str | None = None
    params: int | None = None
    trainable: int | None = None
    non_trainable: int | None = None
    constants: int | None = None
    param_bytes: int | None = None
    bytes_by_dtype: tuple[tuple[str, int], ...] = ()
    macs: int | None = None
    macs_complete: bool | None = None
    macs_formula: str | None = None
    inputs: tuple[tuple[str | None, tuple[Any, ...] | None, str | None], ...] = ()
    outputs: tuple[tuple[str | None, tuple[Any, ...] | None, str | None], ...] = ()
    errors: int = 0
    warnings: int = 0
    infos: int = 0
    findings_by_code: tuple[tuple[str, int], ...] = ()
    sec_codes: tuple[str, ...] = ()
    state: str | None = None
    error: str | None = None

    def as_record(self) -> dict[str, Any]:
        """The row as JSON-able data, keys in :data:`COLUMNS` order."""
        doc = asdict(self)
        doc["bytes_by_dtype"] = dict(self.bytes_by_dtype)
        doc["findings_by_code"] = dict(self.findings_by_code)
        doc["sec_codes"] = list(self.sec_codes)
        for key in ("inputs", "outputs"):
            doc[key] = [{"name": n, "shape": list(s) if s is not None else None, "dtype": d}
                        for n, s, d in getattr(self, key)]
        return {name: doc[name] for name, _, _ in COLUMNS}


def row_from_record(path: str, doc: Mapping[str, Any]) -> InventoryRow:
    """The row :meth:`InventoryRow.as_record` gave (a ``KeyError``/``TypeError``/``ValueError`` when
    ``doc`` is not one: cache entries are checked with it)."""
    if set(doc) != {name for name, _, _ in COLUMNS} or doc["path"] != path:
        raise ValueError("not an inventory row")

    def io(items: Any) -> tuple[tuple[str | None, tuple[Any, ...] | None, str | None], ...]:
        return tuple((i["name"], tuple(i["shape"]) if i["shape"] is not None else None, i["dtype"]) for i in items)

    values = dict(doc)
    values["bytes_by_dtype"] = tuple((str(k), int(v)) for k, v in doc["bytes_by_dtype"].items())
    values["findings_by_code"] = tuple((str(k), int(v)) for k, v in doc["findings_by_code"].items())
    values["sec_codes"] = tuple(str(c) for c in doc["sec_codes"])
    values["inputs"], values["outputs"] = io(doc["inputs"]), io(doc["outputs"])
    return InventoryRow(**values)


def _io(graph: ModelGraph, which: str) -> tuple[tuple[str | None, tuple[Any, ...] | None, str | None], ...]:
    from .analysis.card import card_io

    return tuple((i["name"], tuple(i["shape"]) if i["shape"] is not None else None, i["dtype"])
                 for i in card_io(graph, which))


def _facts(path: str, graph: ModelGraph, options: ScanOptions) -> InventoryRow:
    from .analysis.macs import count_macs
    from .analysis.params import count_params
    from .cache import content_digest
    from .fileio import size_on_disk
    from .rules import lint_with_state

    here = path
    if is_remote(path):  # a remote model: its complete staged copy (fetched now) is hashed and sized
        from .remote import local_copy


        here = str(local_copy(path))
    params = count_params(graph)
    macs = count_macs(graph)
    findings, state = lint_with_state(graph, config=options.config, select=options.select, ignore=options.ignore,
                                      need_state=True)
    by_severity = {"error": 0, "warning": 0, "info": 0}
    by_code: dict[str, int] = {}
    for f in findings:
        by_severity[f.severity.value] += 1
        by_code[f.code] = by_code.get(f.code, 0) + 1
    return InventoryRow(
        path=path, format=graph.format, name=graph.name, file_size=size_on_disk(here), sha256=content_digest(here),
        params=params.totals.params, trainable=params.totals.trainable, non_trainable=params.totals.non_trainable,
        constants=params.constants.params, param_bytes=params.totals.bytes,
        bytes_by_dtype=tuple((d, b) for d, _n, b in params.bytes_by_dtype),
        macs=macs.total, macs_complete=macs.complete,
        macs_formula=macs.formula.text() if macs.formula is not None else None,
        inputs=_io(graph, "inputs"), outputs=_io(graph, "outputs"),
        errors=by_severity["error"], warnings=by_severity["warning"], infos=by_severity["info"],
        findings_by_code=tuple(sorted(by_code.items())),
        sec_codes=tuple(sorted({f.code for f in findings if f.code.startswith("SEC")})),
        state=state.state if state is not None else None)


def scan_model(path: str, options: ScanOptions) -> InventoryRow:
    """The inventory row of the model at ``path``; a model that cannot be read is a row with ``error``."""
    from .batch import load_graph

    try:
        graph = load_graph(path, dims=options.dims or None)
        graph.path = path
        return _facts(path, graph, options)
    except InspectorError as exc:
        return failed_row(path, exc.error if isinstance(exc, FileError) else exc)


def failed_row(path: str, error: InspectorError | str) -> InventoryRow:
    """The row of a model that could not be read (its size and hash still given when it is there)."""
    from .cache import content_digest
    from .fileio import size_on_disk

    exists = os.path.lexists(path)
    return InventoryRow(path=path, file_size=size_on_disk(path) if exists else None,
                        sha256=content_digest(path) if exists else None, error=str(error))


def _encode(row: InventoryRow) -> dict[str, Any] | None:
    return None if row.error is not None else row.as_record()


def scan_cache(options: ScanOptions, *, enabled: bool = True) -> Cached[InventoryRow] | None:
    """The cache of inventory rows under ``options`` (``None``: off)."""
    from .batch import Cached
    from .cache import ResultCache, cache_folder

    folder = cache_folder(enabled=enabled)
    if folder is None:
        return None
    config = {k: v for k, v in asdict(options.config).items() if k != "source"} if options.config else None
    fingerprint = {"config": config, "select": options.select, "ignore": options.ignore,
                   "dims": dict(sorted(options.dims.items()))}
    return Cached(ResultCache(folder, namespace="scan", fingerprint=fingerprint), _encode, row_from_record)


def scan_files(paths: Sequence[str], options: ScanOptions, *, jobs: int = 1,
               cache: bool = False) -> Iterator[InventoryRow]:
    """The rows of the models in ``paths`` (folders are searched), in order, as each is ready."""
    from .batch import model_paths, run_files
    from .parallel import warm_up

    if not cache:
        warm_up(jobs)
    found = model_paths(paths, discovery=options.config.discovery if options.config else None)
    yield from run_files(scan_model, found, options, jobs=jobs, crashed=failed_row,
                         cached=scan_cache(options, enabled=cache), label="scan")
