"""``inspector.summary/1`` JSON (docs/architecture.md, Output contracts), plus ``macs``."""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii
from typing import Any, Callable

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


def _float_text(value: float) -> str:
    """A float as ``json.dumps`` writes it (``allow_nan``: ``NaN``, ``Infinity``, ``-Infinity``)."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)


def _key_text(key: object) -> str:
    """A dict key as ``json.dumps`` writes it: strings as they are, numbers, booleans and null as text."""
    if isinstance(key, str):
        text = key
    elif isinstance(key, float):
        text = _float_text(key)
    elif key is True or key is False or key is None:
        text = {True: "true", False: "false", None: "null"}[key]
    elif isinstance(key, int):
        text = int.__repr__(key)
    else:
        raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")
    return encode_basestring_ascii(text)


def _scalar_text(value: object) -> str | None:
    """A JSON scalar as ``json.dumps`` writes it, or ``None`` for a list or dict."""
    if isinstance(value, str):
        return encode_basestring_ascii(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, (list, tuple, dict)):
        return None
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_SCALARS: dict[type, Callable[[Any], str]] = {str: encode_basestring_ascii, int: int.__repr__, float: _float_text,
                                              bool: lambda v: "true" if v else "false", type(None): lambda v: "null"}
"""The scalar types by exact type (subclasses take :func:`_scalar_text`)."""


def _write(value: Any, pad: str, unit: str, out: list[str]) -> None:
    """Append ``value`` to ``out`` as ``json.dumps(value, indent=...)`` writes it at the indentation
    ``pad`` (``"\n"`` plus the indentation of the line it starts on)."""
    text = _scalar_text(value)
    if text is not None:
        out.append(text)
        return
    if not value:
        out.append("{}" if isinstance(value, dict) else "[]")
        return
    inner = pad + unit
    scalars = _SCALARS
    if isinstance(value, dict):
        out.append("{")
        items: Any = ((encode_basestring_ascii(k) if type(k) is str else _key_text(k), v) for k, v in value.items())
        close = pad + "}"
    else:
        out.append("[")
        items = ((None, v) for v in value)
        close = pad + "]"
    sep = inner
    for key, item in items:
        head = sep if key is None else f"{sep}{key}: "
        sep = "," + inner
        fast = scalars.get(type(item))
        text = fast(item) if fast is not None else _scalar_text(item)
        if text is not None:  # the common item inline: a dim, a name, a count
            out.append(head + text)
        else:
            out.append(head)
            _write(item, inner, unit, out)
    out.append(close)


def dumps_indented(doc: Any, indent: int) -> str:
    """``json.dumps(doc, indent=indent)``, byte for byte, written without the generators of ``json``'s
    pure-Python encoder (the one an indented document takes): a 162,000-layer summary is 4 million lines."""
    out: list[str] = []
    _write(doc, "\n", " " * indent, out)
    return "".join(out)


def render(summary: Summary, *, indent: int | None = 2) -> str:
    doc = as_dict(summary)
    return (json.dumps(doc) if indent is None else dumps_indented(doc, indent)) + "\n"
