"""``inspector.lint/1`` JSON (the contract in docs/architecture.md, Output contracts)."""

from __future__ import annotations

import json
from typing import Any, Sequence

from ..findings import Finding, ModelReport, counts
from ..textsafe import json_text

SCHEMA = "inspector.lint/1"


def finding(f: Finding) -> dict[str, Any]:
    return {"code": f.code, "name": f.name, "severity": f.severity.value, "layer": f.layer,
            "message": f.message}


def document(reports: Sequence[ModelReport]) -> dict[str, Any]:
    results = []
    for r in reports:
        entry: dict[str, Any] = {"model": {"name": r.name, "format": r.format, "path": r.path},
                                 "findings": [finding(f) for f in r.findings]}
        if r.suppressed:
            entry["suppressed"] = r.suppressed
        if r.error is not None:
            entry["error"] = r.error
        results.append(entry)
    return {"schema": SCHEMA, "results": results, "counts": counts(reports)}


def render(reports: Sequence[ModelReport]) -> str:
    return json_text(json.dumps(document(reports), indent=2, ensure_ascii=False)) + "\n"
