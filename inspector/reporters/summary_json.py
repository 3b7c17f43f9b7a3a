"""``inspector.summary/1`` JSON (docs/architecture.md, Output contracts), plus ``macs``."""

from __future__ import annotations

import json
from typing import Any

from ..analysis.summary import Summary
from ..shapetext import shape_json

SCHEMA = "inspector.summary/1"


def as_dict(summary: Summary) -> dict[str, Any]:
    layers = []
    for row in summary.rows:
        p = row.params
        entry: dict[str, Any] = {
            "name": row.name,
            "type": row.type,
            "output_shapes": [shape_json(s) for s in row.output_shapes],
            "params": p.params,
            "trainable_params": p.trainable,
            "non_trainable_params": p.non_trainable,
            "inbound": [str(c) for c in row.connections],
            "weights": [{"name": w.name, "role": w.role, "shape": list(w.shape), "dtype": w.dtype,
                         "trainable": w.trainable} for w in row.weights],
            "macs": row.macs,
        }
        if row.macs_formula is not None:
            entry["macs_formula"] = {**row.macs_formula.as_dict(), "complete": True}
        layers.append(entry)
    t = summary.totals
    totals = {
        "params": t.params, "trainable": t.trainable, "non_trainable": t.non_trainable, "bytes": t.bytes,
        "bytes_by_dtype": {d: b for d, _, b in summary.bytes_by_dtype},
        "macs": summary.macs_total,
        "macs_complete": summary.macs_complete,
    }
    if summary.macs_formula is not None:
        totals["macs_formula"] = {**summary.macs_formula.as_dict(), "complete": summary.macs_formula_complete}
    if summary.optimizer.params:
        totals["optimizer_params"] = summary.optimizer.params
    if summary.quantization.params:
        totals["quantization_params"] = summary.quantization.params
    if summary.constants.params:
        totals["constants"] = summary.constants.params
        totals["constants_bytes"] = summary.constants.bytes
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "model": {"name": summary.name, "format": summary.format, "path": summary.path},
        "layers": layers,
        "totals": totals,
    }
    if summary.duplicates is not None:
        # null: not checked (the candidates hold more than a summary reads)
        doc["duplicate_params"] = (None if summary.duplicates.skipped_bytes
                                   else [p.as_dict() for p in summary.duplicates.pairs])
    if summary.notes:
        doc["notes"] = list(summary.notes)
    if summary.security:
        doc["security"] = {code: n for code, n in summary.security}
    return doc


def render(summary: Summary, *, indent: int | None = 2) -> str:
    return json.dumps(as_dict(summary), indent=indent) + "\n"
