"""``inspector scan PATH... -o inventory.jsonl|csv|parquet``: one row of facts per model.

The format follows the suffix of ``-o`` (``.jsonl``/``.ndjson``, ``.csv``,
``.parquet``) unless ``--format`` names it; without ``-o`` JSON Lines (or CSV) stream
to standard output.  The work is :func:`inspector.inventory.scan_files`.

Exit code: 0 when every model was read (whatever it holds), 2 when one could not be
(its row carries the error) or the command line is wrong.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from ..errors import UsageError
from ..reporters.inventory import FORMATS, SUFFIXES
from ..textsafe import visible
from ._options import (
    add_batch_options,
    add_config_options,
    add_dim_option,
    add_engine_options,
    add_format_option,
    add_output_option,
    check_output,
    dims_option,
    jobs_option,
    load_config_option,
    split_codes,
    write_output,
)

if TYPE_CHECKING:  # pragma: no cover
    from ..inventory import InventoryRow, ScanOptions


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="model files (.keras, .h5, .onnx), SavedModel folders, or folders to search for models")
    add_output_option(p, help="write the inventory to FILE (atomically): .jsonl, .csv or .parquet")
    add_format_option(p, choices=FORMATS, default=None,
                      help="jsonl, csv or parquet (default: from the suffix of -o, else jsonl)")
    add_batch_options(p)
    add_dim_option(p)
    add_engine_options(p)
    p.add_argument("--select", action="append", metavar="CODES", help="rule codes or prefixes counted")
    p.add_argument("--ignore", action="append", metavar="CODES", help="rule codes or prefixes not counted")
    add_config_options(p, config_help="read [tool.inspector] options from FILE")


def inventory_format(fmt: str | None, output: str | None) -> str:
    """``--format``, else the suffix of ``-o``, else ``jsonl``."""
    if fmt:
        return fmt
    if output:
        found = SUFFIXES.get(Path(output).suffix.lower())
        if found is None:
            raise UsageError(f"cannot tell the inventory format from {output!r}: name it .jsonl, .csv or "
                             ".parquet, or pass --format jsonl|csv|parquet")
        return found
    return "jsonl"


def run(args: argparse.Namespace) -> int:
    from ..inventory import ScanOptions
    from ..reporters.inventory import csv_header, csv_line, jsonl_line, parquet_bytes

    fmt = inventory_format(args.format, args.output)
    if fmt == "parquet" and not args.output:
        raise UsageError("Parquet is written to a file: pass -o FILE.parquet")
    check_output(args.output, args.paths)
    options = ScanOptions(config=load_config_option(args), select=split_codes(args.select),
                          ignore=split_codes(args.ignore), dims=dims_option(args))
    rows = []
    parts = [csv_header()] if fmt == "csv" else []
    if parts and not args.output:
        write_output(parts[0], None, flush=True)
    code = 0
    for row in _rows(args, options):
        if row.error is not None:
            print(f"inspector: error: {visible(row.path)}: {visible(row.error)}", file=sys.stderr)
            code = 2
        rows.append(row)
        if fmt != "parquet":
            parts.append(jsonl_line(row) if fmt == "jsonl" else csv_line(row))
            if not args.output:
                write_output(parts[-1], None, flush=True)
    if args.output and fmt == "parquet" and args.engine == "dask":
        from ..engines import write_partitions

        write_partitions(rows, args.output, encode=parquet_bytes)  # a folder of part-NNNNN.parquet
    elif args.output:
        write_output(parquet_bytes(rows) if fmt == "parquet" else "".join(parts), args.output)
    return code


def _rows(args: argparse.Namespace, options: ScanOptions) -> Iterable[InventoryRow]:
    """The rows, in path order: here through the cache and ``--jobs`` workers, or, with
    ``--engine dask`` or remote paths, through :func:`inspector.engines.run_inventory`
    (remote prefixes listed, no cache)."""
    from ..fileio import is_remote
    from ..inventory import failed_row, scan_files, scan_model

    jobs = jobs_option(args)
    if args.engine == "local" and not any(is_remote(p) for p in args.paths):
        return scan_files(args.paths, options, jobs=jobs, cache=not args.no_cache)
    from ..batch import model_paths
    from ..engines import run_inventory
    from ..parallel import run_ordered

    discovery = options.config.discovery if options.config else None
    return run_inventory(args.paths, options, func=scan_model, failed=failed_row, engine=args.engine,
                         scheduler=args.scheduler, expand_local=lambda ps: model_paths(ps, discovery=discovery),
                         local=lambda f, items, o: run_ordered(f, items, o, jobs=jobs, crashed=failed_row))
