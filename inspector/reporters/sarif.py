"""SARIF 2.1.0: the format code-scanning services (GitHub, GitLab, Azure DevOps) ingest.

Every rule that ran is described in ``tool.driver.rules`` with its documentation
as help text; every finding is a result pointing at the model file (a physical
location) and at the layer (a logical location).  Model files have no lines, so
the region is the file's first line: GitHub code scanning requires one.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import PurePath
from typing import Any, Sequence

from .. import __version__
from ..findings import ModelReport
from ..rules.registry import Rule
from ..textsafe import json_text

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def _uri(path: str) -> str:
    p = PurePath(path)
    if p.is_absolute():
        from pathlib import Path

        return Path(path).as_uri()
    return p.as_posix()


def _rule(r: Rule) -> dict[str, Any]:
    return {
        "id": r.code,
        "name": r.name,
        "shortDescription": {"text": r.summary},
        "fullDescription": {"text": r.doc},
        "help": {"text": r.doc, "markdown": f"**{r.code} {r.name}**\n\n{r.doc}"},
        "defaultConfiguration": {"level": _LEVEL[r.severity.value]},
        "properties": {"tags": [r.family, r.severity.value], "precision": "high"},
    }


def document(reports: Sequence[ModelReport], *, rules: Sequence[Rule] = ()) -> dict[str, Any]:
    used = {f.code for r in reports for f in r.findings}
    by_code = {r.code: r for r in rules}
    missing = used - set(by_code)
    if missing:  # findings from rules not passed in: describe them too
        from ..rules.registry import get_rule

        for code in missing:
            by_code[code] = get_rule(code)
    ordered = [by_code[c] for c in sorted(by_code)]
    index = {r.code: i for i, r in enumerate(ordered)}
    results: list[dict[str, Any]] = []
    notifications: list[dict[str, Any]] = []
    for rep in reports:
        uri = _uri(rep.path)
        if rep.error is not None:
            notifications.append({"level": "error", "message": {"text": f"{rep.path}: {rep.error}"},
                                  "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri}}}]})
        for f in rep.findings:
            logical = {"name": f.layer or rep.name or uri, "kind": "member" if f.layer else "module",
                       "fullyQualifiedName": f"{rep.name or uri}/{f.layer}" if f.layer else (rep.name or uri)}
            fingerprint = hashlib.sha256(f"{uri}\0{f.code}\0{f.layer or ''}".encode()).hexdigest()[:32]
            results.append({
                "ruleId": f.code,
                "ruleIndex": index[f.code],
                "level": _LEVEL[f.severity.value],
                "message": {"text": f"{f.layer}: {f.message}" if f.layer else f.message},
                "locations": [{
                    "physicalLocation": {"artifactLocation": {"uri": uri}, "region": {"startLine": 1}},
                    "logicalLocations": [logical],
                }],
                "partialFingerprints": {"inspectorFinding/v1": fingerprint},
            })
    run: dict[str, Any] = {
        "tool": {"driver": {"name": "inspector", "version": __version__, "semanticVersion": __version__,
                            "rules": [_rule(r) for r in ordered]}},
        "results": results,
        "invocations": [{"executionSuccessful": not notifications,
                         "toolExecutionNotifications": notifications}],
        "columnKind": "unicodeCodePoints",
    }
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def render(reports: Sequence[ModelReport], *, rules: Sequence[Rule] = ()) -> str:
    return json_text(json.dumps(document(reports, rules=rules), indent=2, ensure_ascii=False)) + "\n"
