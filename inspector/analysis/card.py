"""The model card, computed once: what ``inspector info`` prints and the HTML and
Markdown reports open with.

:func:`model_card` reads ``ModelGraph.metadata`` (what the loader found:
producer, IR version and opsets for ONNX; ``keras_version`` and friends for
Keras), the graph's inputs and outputs and the analysers' results handed in by
the caller, and returns a frozen :class:`ModelCard`: the ``inspector.info/1``
JSON document plus the ordered rows every renderer shows (plain text; the
renderers only escape and lay them out).  Nothing here counts or reads weights.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from ..ir import ModelGraph
from ..shapetext import format_shape
from ..units import bytes_text, count_text, readable_size
from .macs import MacsReport
from .params import ParamCount, ParamReport

if TYPE_CHECKING:
    from .duplicates import DuplicateReport

SCHEMA = "inspector.info/1"

# Metadata keys shown in their own card lines, in this order; everything else
# (format-specific extras) is listed under "metadata".
_KNOWN = ("producer_name", "producer_version", "ir_version", "opset_import", "domain", "model_version",
          "doc_string", "graph_name", "inputs", "outputs", "external_data", "file_size", "metadata_props",
          "keras_version", "backend", "date_saved", "config_style", "weights_format", "compile_config",
          "functions", "nodes", "folded_nodes", "initializers", "unused_initializers", "shape_inference",
          "training_info")
# Metadata keys with a line of their own among the facts (the rest: one line each, by key).
_FACT_KEYS = ("nodes", "folded_nodes", "functions", "shape_inference", "unused_initializers")


@dataclass(frozen=True, slots=True)
class CardRow:
    """One line of the card: a label and its value as plain text."""

    key: str
    """Stable name of the fact (``"format"``, ``"opset_import"``, ...), for renderers that place a row."""
    label: str
    value: str
    code: bool = False
    """The value is a name from the file (reports show it as code)."""


@dataclass(frozen=True, slots=True)
class TensorRow:
    """One graph input or output."""

    name: str
    dtype: str
    shape: str


@dataclass(frozen=True)
class ModelCard:
    """The card of one model: its JSON document and the rows renderers show."""

    doc: Mapping[str, Any]
    """The ``inspector.info/1`` document (JSON-ready values)."""
    identity: tuple[CardRow, ...]
    """What the file is: model, format, path, size, producer, versions, opsets, description."""
    inputs: tuple[TensorRow, ...]
    outputs: tuple[TensorRow, ...]
    external_data: tuple[tuple[str, str, str, str], ...]
    """(location, size, tensors, status) of every external-data file."""
    parameters: tuple[tuple[str, str, str], ...]
    """(label, count, size) lines of the parameter table (totals, per dtype, extra state)."""
    amounts: tuple[CardRow, ...]
    """The same parameter facts as single rows (for key/value cards)."""
    facts: tuple[CardRow, ...]
    """Layers, nodes, MACs and the format-specific metadata."""
    metadata_props: tuple[tuple[str, str], ...]
    security: tuple[tuple[str, str], ...]
    """(code, message) of every security finding of the loader."""
    notes: tuple[str, ...]


def one_line(text: Any, limit: int = 100) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _counts(c: ParamCount) -> dict[str, int]:
    return {"params": c.params, "trainable": c.trainable, "non_trainable": c.non_trainable, "bytes": c.bytes}


def _io(graph: ModelGraph, which: str) -> list[dict[str, Any]]:
    """Inputs or outputs as {name, dtype, shape}: from metadata when the loader
    recorded them (ONNX), else from the graph (Keras)."""
    meta = graph.metadata.get(which)
    if isinstance(meta, list) and all(isinstance(m, dict) for m in meta):
        return [{"name": m.get("name"), "dtype": m.get("dtype"), "shape": m.get("shape")} for m in meta]
    refs = graph.inputs if which == "inputs" else graph.outputs
    out = []
    for ref in refs:
        shape = graph.shape_of(ref)
        dtype = graph.layer(ref.layer).dtype if ref.layer in graph else None
        name = ref.layer if which == "inputs" or (ref.node_index, ref.tensor_index) == (0, 0) else str(ref)
        out.append({"name": name, "dtype": dtype, "shape": list(shape) if shape is not None else None})
    return out


def card_io(graph: ModelGraph, which: str) -> list[dict[str, Any]]:
    """The model's ``inputs`` or ``outputs`` (``which``) as the card lists them: {name, dtype, shape}."""
    return _io(graph, which)


def card_doc(graph: ModelGraph, params: ParamReport, *, macs: MacsReport | None = None,
             file_size: int | None = None, duplicates: DuplicateReport | None = None) -> dict[str, Any]:
    """Everything the card shows, as the ``inspector.info/1`` JSON document (``duplicate_params`` when
    ``duplicates`` is given)."""
    meta = graph.metadata
    producer = None
    if meta.get("producer_name") or meta.get("producer_version"):
        producer = {"name": meta.get("producer_name") or "", "version": meta.get("producer_version") or ""}
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "model": {"name": graph.name, "format": graph.format, "path": graph.path},
        "producer": producer,
        "ir_version": meta.get("ir_version"),
        "opset_import": meta.get("opset_import"),
        "domain": meta.get("domain") or None,
        "model_version": meta.get("model_version") or None,
        "doc_string": meta.get("doc_string") or None,
        "keras_version": meta.get("keras_version"),
        "backend": meta.get("backend"),
        "date_saved": meta.get("date_saved"),
        "inputs": _io(graph, "inputs"),
        "outputs": _io(graph, "outputs"),
        "file_size": meta.get("file_size", file_size),
        "external_data": list(meta.get("external_data") or []),
        "params": _counts(params.totals),
        "params_by_dtype": [{"dtype": d, "params": n, "bytes": b} for d, n, b in params.bytes_by_dtype],
        "quantization_params": _counts(params.quantization),
        "optimizer_params": _counts(params.optimizer),
        "layers": len(graph.layers),
        "metadata_props": meta.get("metadata_props") or {},
        "metadata": {k: v for k, v in sorted(meta.items()) if k not in _KNOWN},
        "notes": list(graph.notes),
        "security": [{"code": f.code, "message": f.message, "layer": f.layer} for f in graph.security],
    }
    for key in ("nodes", "folded_nodes", "functions", "shape_inference", "unused_initializers", "config_style",
                "weights_format"):
        if key in meta:
            doc["metadata"][key] = meta[key]
    if macs is not None:
        doc["macs"] = {"total": macs.total, "complete": macs.complete, "unknown_layers": len(macs.unknown)}
        if macs.formula is not None:
            doc["macs"]["formula"] = {**macs.formula.as_dict(), "complete": macs.formula_complete}
    if duplicates is not None:
        # null: not checked (the candidates hold more than a summary reads)
        doc["duplicate_params"] = (None if duplicates.skipped_bytes else [p.as_dict() for p in duplicates.pairs])
        if duplicates.skipped_bytes:
            doc["duplicate_params_skipped_bytes"] = duplicates.skipped_bytes
    return doc


def _identity(doc: Mapping[str, Any], kind: str | None) -> tuple[CardRow, ...]:
    """Model, format, path, size, producer, versions, opsets and description, in this order (a fact the
    file does not hold has no row)."""
    model = doc["model"]
    fmt = str(model["format"])
    if doc.get("ir_version") is not None:
        fmt += f" (IR version {doc['ir_version']})"
    p = doc.get("producer")
    opsets = doc.get("opset_import")
    always = (CardRow("model", "Model", str(model["name"]), code=True),
              CardRow("format", "Format", fmt + (f" · {kind}" if kind else "")))
    optional = [
        CardRow("path", "Path", str(model.get("path") or ""), code=True),
        CardRow("file_size", "File size", bytes_text(doc["file_size"]) if doc.get("file_size") is not None else ""),
        CardRow("producer", "Producer", (f"{p['name']} {p['version']}".strip() or "?") if p else ""),
        *(CardRow(key, label, str(doc.get(key) or ""))
          for key, label in (("keras_version", "Keras version"), ("backend", "Backend"), ("date_saved", "Saved"))),
        CardRow("opset_import", "Opset imports", ", ".join(f"{d} {v}" for d, v in opsets.items()) if opsets else ""),
        CardRow("domain", "Domain", str(doc.get("domain") or "")),
        CardRow("model_version", "Model version", str(doc.get("model_version") or "")),
        CardRow("doc_string", "Description", one_line(doc["doc_string"]) if doc.get("doc_string") else ""),
    ]
    return always + tuple(r for r in optional if r.value)


def _tensor_rows(items: list[dict[str, Any]]) -> tuple[TensorRow, ...]:
    return tuple(TensorRow(str(i["name"]), str(i["dtype"] or "?"),
                           format_shape(tuple(i["shape"]) if isinstance(i["shape"], list) else i["shape"]))
                 for i in items)


def _external(doc: Mapping[str, Any]) -> tuple[tuple[str, str, str, str], ...]:
    out = []
    for e in doc["external_data"]:
        size = e.get("size")
        status = e.get("status", "ok")
        out.append((str(e.get("location")), bytes_text(size) if size is not None else "size unknown",
                    f"{e.get('tensors', 0)} tensor(s)", "" if status == "ok" else status))
    return tuple(out)


def _parameters(doc: Mapping[str, Any]) -> tuple[tuple[tuple[str, str, str], ...], tuple[CardRow, ...]]:
    """The parameter facts as table lines (text card) and as key/value rows (reports)."""
    p, q, o = doc["params"], doc["quantization_params"], doc["optimizer_params"]
    table = [("Total", f"{p['params']:,}", f"({readable_size(p['bytes'])})"),
             ("Trainable", f"{p['trainable']:,}", ""),
             ("Non-trainable", f"{p['non_trainable']:,}", "")]
    table += [(r["dtype"], f"{r['params']:,}", f"({readable_size(r['bytes'])})") for r in doc["params_by_dtype"]]
    rows = [CardRow("params", "Parameters", f"{p['params']:,} ({readable_size(p['bytes'])})"),
            CardRow("trainable", "Trainable", f"{p['trainable']:,}"),
            CardRow("non_trainable", "Non-trainable", f"{p['non_trainable']:,}")]
    by_dtype = ", ".join(f"{r['dtype']}: {r['params']:,} ({readable_size(r['bytes'])})"
                         for r in doc["params_by_dtype"])
    if by_dtype:
        rows.append(CardRow("params_by_dtype", "By dtype", by_dtype))
    for part, label, row_label in ((q, "Quantization scales/zero points", "Quantization scales"),
                                   (o, "Optimizer state", "Optimizer state")):
        if part["params"]:
            table.append((label, f"{part['params']:,}", f"({readable_size(part['bytes'])})"))
            rows.append(CardRow(label.split()[0].lower(), row_label,
                                f"{part['params']:,} ({readable_size(part['bytes'])}), not counted above"))
    return tuple(table), tuple(rows)


def _facts(doc: Mapping[str, Any]) -> tuple[CardRow, ...]:
    rows = [CardRow("layers", "Layers", f"{doc['layers']:,}")]
    meta = doc.get("metadata", {})
    if meta.get("nodes") is not None:
        folded = meta.get("folded_nodes", 0)
        rows.append(CardRow("nodes", "Nodes", f"{meta['nodes']:,}"
                            + (f" ({folded:,} constant nodes folded into weights)" if folded else "")))
    if "macs" in doc:
        m = doc["macs"]
        text = f"{count_text(m['total'])} ({m['total']:,})"
        if "formula" in m:
            text = f"{m['formula']['text']} (formula per sample; bind with --dim)"
            if not m["formula"]["complete"]:
                text += ", some layers unknown"
        elif not m["complete"]:
            text += f", {m['unknown_layers']} layer(s) unknown"
        rows.append(CardRow("macs", "MACs", text))
    if doc.get("duplicate_params_skipped_bytes"):
        rows.append(CardRow("duplicate_params", "Duplicate tensors",
                            f"not checked: {readable_size(doc['duplicate_params_skipped_bytes'])} of same-shaped "
                            "tensors to read (inspector lint checks them, GRAPH003)"))
    for pair in doc.get("duplicate_params") or ():
        how = "a transposed copy" if pair["transposed"] else "an identical copy"
        rows.append(CardRow("duplicate_params", "Duplicate tensor",
                            f"{pair['copy']} is {how} of {pair['original']} "
                            f"({readable_size(pair['wasted_bytes'])} wasted)"))
    if meta.get("functions"):
        rows.append(CardRow("functions", "Functions", ", ".join(meta["functions"])))
    if meta.get("shape_inference") and meta["shape_inference"] != "ok":
        rows.append(CardRow("shape_inference", "Shape inference", str(meta["shape_inference"])))
    if meta.get("unused_initializers"):
        names = meta["unused_initializers"]
        rows.append(CardRow("unused_initializers", "Unused initializers",
                            f"{len(names)} ({', '.join(names[:5])}{', …' if len(names) > 5 else ''})"))
    for key in sorted(k for k in meta if k not in _FACT_KEYS):
        value = meta[key]
        rows.append(CardRow(key, key, one_line(value if isinstance(value, str) else json.dumps(value, default=str))))
    return tuple(rows)


def model_card(graph: ModelGraph, params: ParamReport, *, macs: MacsReport | None = None,
               file_size: int | None = None, kind: str | None = None,
               duplicates: DuplicateReport | None = None) -> ModelCard:
    """The card of ``graph``.  ``kind`` (``sequential``/``functional``, from the
    summary) is added to the Format row when given; ``duplicates`` adds a row per copied tensor."""
    doc = card_doc(graph, params, macs=macs, file_size=file_size, duplicates=duplicates)
    table, amounts = _parameters(doc)
    return ModelCard(
        doc=doc, identity=_identity(doc, kind), inputs=_tensor_rows(doc["inputs"]),
        outputs=_tensor_rows(doc["outputs"]), external_data=_external(doc), parameters=table, amounts=amounts,
        facts=_facts(doc),
        metadata_props=tuple((str(k), one_line(v)) for k, v in sorted(doc["metadata_props"].items())),
        security=tuple((s["code"], s["message"]) for s in doc["security"]), notes=tuple(doc["notes"]))


def report_identity(card: ModelCard) -> tuple[CardRow, ...]:
    """The identity rows a report shows: all but the model name and the path (a
    report names the file instead and must not depend on the folder)."""
    return tuple(r for r in card.identity if r.key not in ("model", "path"))
