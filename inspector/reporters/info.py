"""``inspector info``: the model card (:mod:`inspector.analysis.card`), as text or
``inspector.info/1`` JSON.  Only layout happens here: the rows come from the card.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from ..analysis.card import CardRow, ModelCard, one_line


def render_json(doc: Mapping[str, Any], *, indent: int | None = 2) -> str:
    """A card's JSON document (or a list of them), as printed."""
    return json.dumps(doc, indent=indent, default=str) + "\n"


def _key_values(rows: Sequence[CardRow]) -> list[str]:
    width = max(len(r.label) for r in rows) + 2
    return [f"{r.label:<{width}}{r.value}" for r in rows]


def _table(lines: list[str], title: str, items: Sequence[Sequence[str]]) -> None:
    """Append a titled table, columns padded to their widest cell."""
    lines.append("")
    lines.append(title)
    if not items:
        lines.append("  (none)")
        return
    widths = [max(len(r[i]) for r in items) for i in range(len(items[0]))]
    for r in items:
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def render_text(card: ModelCard) -> str:
    """The card as ``inspector info`` prints it."""
    lines = _key_values(card.identity)
    _table(lines, "Inputs", [[t.name, t.dtype, t.shape] for t in card.inputs])
    _table(lines, "Outputs", [[t.name, t.dtype, t.shape] for t in card.outputs])
    if card.external_data:
        _table(lines, "External data", card.external_data)
    _table(lines, "Parameters", card.parameters)
    lines.append("")
    lines += _key_values(card.facts)
    if card.metadata_props:
        _table(lines, "Metadata", card.metadata_props)
    if card.security:
        _table(lines, "Security", card.security)
    if card.notes:
        lines.append("")
        lines.append("Notes")
        lines += [f"  - {one_line(n, 200)}" for n in card.notes]
    return "\n".join(lines) + "\n"
