"""Baselines: accept the findings a project already has, fail only on new ones.

``inspector lint --write-baseline FILE`` records every current finding;
``inspector lint --baseline FILE`` then hides findings that match a recorded one
(same model, rule and layer; each recorded finding absorbs at most one current
finding, so a second copy of the same problem still shows).  Messages are not
compared: they carry numbers that may shift without the problem changing.

Model paths are stored relative to the baseline file's folder, so the file keeps
working when the repository is checked out somewhere else.

.. code-block:: json

    {"schema": "inspector.baseline/1",
     "findings": [{"path": "models/m.keras", "code": "INIT002", "layer": "dense_1",
                   "message": "..."}]}
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from .errors import UsageError
from .fileio import write_atomic
from .findings import Finding

SCHEMA = "inspector.baseline/1"


def _rel(path: str, base: Path) -> str:
    p = Path(path).resolve()
    try:
        return p.relative_to(base).as_posix()
    except ValueError:
        return Path(os.path.relpath(p, base)).as_posix() if p.anchor == base.anchor else p.as_posix()


@dataclass
class Baseline:
    """Recorded findings, keyed by (model path relative to ``base``, code, layer)."""

    base: Path
    counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)

    def key(self, path: str, finding: Finding) -> tuple[str, str, str]:
        return (_rel(path, self.base), finding.code, finding.layer or "")

    def filter(self, path: str, findings: Iterable[Finding]) -> tuple[list[Finding], int]:
        """(findings not in the baseline, number suppressed)."""
        remaining = Counter(self.counts)
        kept: list[Finding] = []
        suppressed = 0
        for f in findings:
            k = self.key(path, f)
            if remaining[k] > 0:
                remaining[k] -= 1
                suppressed += 1
            else:
                kept.append(f)
        return kept, suppressed


def load_baseline(path: str | os.PathLike[str]) -> Baseline:
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{p}: baseline file not found (create it with --write-baseline)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{p}: cannot read the baseline: {exc}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{p}: the baseline is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA or not isinstance(doc.get("findings"), list):
        raise UsageError(f"{p}: not an inspector baseline (expected schema {SCHEMA!r})")
    counts: Counter[tuple[str, str, str]] = Counter()
    for item in doc["findings"]:
        if not isinstance(item, dict) or not isinstance(item.get("path"), str) \
                or not isinstance(item.get("code"), str):
            raise UsageError(f"{p}: malformed baseline entry {item!r}")
        counts[(item["path"], item["code"], item.get("layer") or "")] += 1
    return Baseline(p.resolve().parent, counts)


def write_baseline(path: str | os.PathLike[str], results: Iterable[tuple[str, Iterable[Finding]]]) -> int:
    """Record every finding of ``results`` ((model path, findings) pairs); returns the count."""
    p = Path(path)
    base = p.resolve().parent
    entries = []
    for model_path, findings in results:
        for f in findings:
            entries.append({"path": _rel(model_path, base), "code": f.code, "layer": f.layer,
                            "message": f.message})
    entries.sort(key=lambda e: (e["path"], e["code"], e["layer"] or "", e["message"]))
    write_atomic(p, json.dumps({"schema": SCHEMA, "findings": entries}, indent=2) + "\n")
    return len(entries)
