"""``inspector info``: the model card (:mod:`inspector.analysis.card`), as text or
``inspector.info/1`` JSON.  Only layout happens here: the rows come from the card.

The formats are one ``{name: InfoFormat}`` registry, :data:`FORMATS` the only
list of their names (the ``--format`` choices read it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from ..analysis.card import CardRow, ModelCard, one_line
from ..textsafe import scrub


def render_json(doc: Mapping[str, Any], *, indent: int | None = 2) -> str:
    """A card's JSON document (or a list of them), as printed."""
    return json.dumps(doc, indent=indent, default=str) + "\n"


# Text labels of the format-specific facts the card lists under their metadata key.
LABELS: dict[str, str] = {
    "config_style": "Config style",
    "weights_format": "Weights format",
    "keras_version": "Keras version",
    "tensorflow_version": "TensorFlow version",
    "saved_model_schema_version": "SavedModel schema version",
    "compile_config": "Compile config",
    "training_info": "Training info",
    "date_saved": "Saved",
    "onnx": "ONNX",
}


def human_label(row: CardRow) -> str:
    """The row's label for people: a raw metadata key (``weights_format``) becomes ``Weights format``."""
    if row.label != row.key:
        return row.label
    return LABELS.get(row.key) or row.key.replace("_", " ").capitalize()


def _key_values(rows: Sequence[CardRow]) -> list[str]:
    labels = [human_label(r) for r in rows]
    width = max(len(label) for label in labels) + 2
    return [f"{label:<{width}}{r.value}" for label, r in zip(labels, rows, strict=True)]


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
    """The card as ``inspector info`` prints it (names and locations with control characters shown as escapes)."""
    card = scrub(card)
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


@dataclass(frozen=True)
class InfoFormat:
    """How one ``--format`` writes the cards of the models named on the command line."""

    each: Callable[[ModelCard, int], str]
    """Written as soon as a model's card is ready: ``(card, how many cards came before)``."""
    end: Callable[[Sequence[ModelCard], int], str]
    """Written after the last model: ``(every card, how many models were named)``."""


def _text_each(card: ModelCard, before: int) -> str:
    return ("\n" if before else "") + render_text(card)


def _json_end(cards: Sequence[ModelCard], named: int) -> str:
    """One document for one model, else an ``inspector.info-list/1`` list (also when a model failed)."""
    if named == 1 and cards:
        return render_json(cards[0].doc)
    return render_json({"schema": "inspector.info-list/1", "models": [c.doc for c in cards]})


def _nothing(*_args: object) -> str:
    return ""


RENDERERS: dict[str, InfoFormat] = {
    "text": InfoFormat(each=_text_each, end=_nothing),
    "json": InfoFormat(each=_nothing, end=_json_end),
}
FORMATS: tuple[str, ...] = tuple(RENDERERS)
