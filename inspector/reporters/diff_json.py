"""``inspector diff --format json``: schema ``inspector.diff/1``.

.. code-block:: json

    {"schema": "inspector.diff/1",
     "a": {"name": "...", "format": "keras", "path": "a.keras", "layers": 9},
     "b": {...}, "cross_format": false,
     "totals": {"params": {"a": 15750, "b": 16000, "change": 250}, ...},
     "layers": {"added": [{"name", "type", "output_shapes", "params", ...}], "removed": [...],
                "changed": [{"a": "conv2d_7", "b": "conv2d_7", "matched_by": "name",
                             "changes": [{"what": "params", "a": "20", "b": "40"}], ...}],
                "unchanged": 7},
     "io": [...], "findings": {"new": [...], "fixed": [...], "unchanged": 1}, "changed_kinds": ["params"]}
"""

from __future__ import annotations

import json
from typing import Any

from ..analysis.diff import LayerFacts, ModelDiff
from ..findings import Finding
from ..shapetext import shape_json

SCHEMA = "inspector.diff/1"


def _facts(f: LayerFacts) -> dict[str, Any]:
    return {"name": f.name, "type": f.type, "kind": f.kind, "output_shapes": [shape_json(s) for s in f.shapes],
            "params": f.params, "trainable": f.trainable, "dtypes": list(f.dtypes)}


def _finding(f: Finding) -> dict[str, Any]:
    return {"code": f.code, "name": f.name, "severity": str(f.severity), "layer": f.layer, "message": f.message}


def document(d: ModelDiff, *, kinds: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "a": {"name": d.a.name, "format": d.a.format, "path": d.a.path, "layers": d.a.layers},
        "b": {"name": d.b.name, "format": d.b.format, "path": d.b.path, "layers": d.b.layers},
        "cross_format": d.cross_format,
        "totals": {t.what: {"a": t.before, "b": t.after, "change": t.change} for t in d.totals},
        "layers": {
            "added": [_facts(f) for f in d.added],
            "removed": [_facts(f) for f in d.removed],
            "changed": [{"a": p.a.name, "b": p.b.name, "type_a": p.a.type, "type_b": p.b.type, "matched_by": p.how,
                         "changes": [{"what": c.what, "a": c.before, "b": c.after} for c in p.changes],
                         "parts": list(p.parts), "folded": list(p.folded)} for p in d.changed],
            "matched": [{"a": p.a.name, "b": p.b.name, "matched_by": p.how} for p in d.pairs],
            "unchanged": len(d.pairs) - len(d.changed),
            "plumbing_unmatched": {"a": d.plumbing[0], "b": d.plumbing[1]},
        },
        "io": [{"what": c.what, "a": c.before, "b": c.after} for c in d.io],
        "findings": ({"new": [_finding(f) for f in d.new_findings],
                      "fixed": [_finding(f) for f in d.fixed_findings],
                      "unchanged": d.unchanged_findings} if d.findings_compared else None),
        "changed_kinds": list(kinds),
        "notes": list(d.notes),
    }


def render(d: ModelDiff, *, kinds: tuple[str, ...] = ()) -> str:
    return json.dumps(document(d, kinds=kinds), indent=2) + "\n"
