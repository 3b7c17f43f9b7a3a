"""``inspector info``: the model card, as text or ``inspector.info/1`` JSON.

The card is format-agnostic: it reads ``ModelGraph.metadata`` (what the loader
found: producer, IR version and opsets for ONNX; ``keras_version`` and friends
for Keras), the graph's inputs and outputs, and the analysers' results handed in
by the command.  Nothing here counts or reads weights.
"""

from __future__ import annotations

import json
from typing import Any

from ..analysis.macs import MacsReport
from ..analysis.params import ParamCount, ParamReport
from ..ir import ModelGraph
from .shapes import format_shape
from .units import count_text as _count_text
from .units import readable_size

SCHEMA = "inspector.info/1"

# Metadata keys shown in their own card lines, in this order; everything else
# (format-specific extras) is listed under "metadata".
_KNOWN = ("producer_name", "producer_version", "ir_version", "opset_import", "domain", "model_version",
          "doc_string", "graph_name", "inputs", "outputs", "external_data", "file_size", "metadata_props",
          "keras_version", "backend", "date_saved", "config_style", "weights_format", "compile_config",
          "functions", "nodes", "folded_nodes", "initializers", "unused_initializers", "shape_inference",
          "training_info")


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


def card(graph: ModelGraph, params: ParamReport, *, macs: MacsReport | None = None,
         file_size: int | None = None) -> dict[str, Any]:
    """Everything the card shows, as plain JSON-ready values."""
    meta = graph.metadata
    producer = None
    if meta.get("producer_name") or meta.get("producer_version"):
        producer = {"name": meta.get("producer_name") or "", "version": meta.get("producer_version") or ""}
    size = meta.get("file_size", file_size)
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
        "file_size": size,
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
    return doc


def render_json(doc: dict[str, Any], *, indent: int | None = 2) -> str:
    return json.dumps(doc, indent=indent, default=str) + "\n"


def _shape_text(shape: Any) -> str:
    return format_shape(tuple(shape) if isinstance(shape, list) else shape)


def _one_line(text: str, limit: int = 100) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def render_text(doc: dict[str, Any]) -> str:
    lines: list[str] = []
    rows: list[tuple[str, str]] = []
    model = doc["model"]
    rows.append(("Model", str(model["name"])))
    fmt = str(model["format"])
    if doc.get("ir_version") is not None:
        fmt += f" (IR version {doc['ir_version']})"
    rows.append(("Format", fmt))
    if model.get("path"):
        rows.append(("Path", str(model["path"])))
    if doc.get("file_size") is not None:
        rows.append(("File size", f"{readable_size(doc['file_size'])} ({doc['file_size']:,} bytes)"))
    if doc.get("producer"):
        p = doc["producer"]
        rows.append(("Producer", f"{p['name']} {p['version']}".strip() or "?"))
    for key, label in (("keras_version", "Keras version"), ("backend", "Backend"), ("date_saved", "Saved")):
        if doc.get(key):
            rows.append((label, str(doc[key])))
    if doc.get("opset_import"):
        rows.append(("Opset imports", ", ".join(f"{d} {v}" for d, v in doc["opset_import"].items())))
    if doc.get("domain"):
        rows.append(("Domain", str(doc["domain"])))
    if doc.get("model_version"):
        rows.append(("Model version", str(doc["model_version"])))
    if doc.get("doc_string"):
        rows.append(("Description", _one_line(doc["doc_string"])))
    width = max(len(k) for k, _ in rows) + 2
    lines += [f"{k:<{width}}{v}" for k, v in rows]

    def table(title: str, items: list[list[str]]) -> None:
        lines.append("")
        lines.append(title)
        if not items:
            lines.append("  (none)")
            return
        widths = [max(len(r[i]) for r in items) for i in range(len(items[0]))]
        for r in items:
            lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())

    table("Inputs", [[str(i["name"]), str(i["dtype"] or "?"), _shape_text(i["shape"])] for i in doc["inputs"]])
    table("Outputs", [[str(o["name"]), str(o["dtype"] or "?"), _shape_text(o["shape"])] for o in doc["outputs"]])
    if doc["external_data"]:
        items = []
        for e in doc["external_data"]:
            size = e.get("size")
            status = e.get("status", "ok")
            items.append([str(e.get("location")),
                          f"{readable_size(size)} ({size:,} bytes)" if size is not None else "size unknown",
                          f"{e.get('tensors', 0)} tensor(s)", "" if status == "ok" else status])
        table("External data", items)
    p = doc["params"]
    items = [["Total", f"{p['params']:,}", f"({readable_size(p['bytes'])})"],
             ["Trainable", f"{p['trainable']:,}", ""],
             ["Non-trainable", f"{p['non_trainable']:,}", ""]]
    for row in doc["params_by_dtype"]:
        items.append([row["dtype"], f"{row['params']:,}", f"({readable_size(row['bytes'])})"])
    q = doc["quantization_params"]
    if q["params"]:
        items.append(["Quantization scales/zero points", f"{q['params']:,}", f"({readable_size(q['bytes'])})"])
    o = doc["optimizer_params"]
    if o["params"]:
        items.append(["Optimizer state", f"{o['params']:,}", f"({readable_size(o['bytes'])})"])
    table("Parameters", items)
    lines.append("")
    extra: list[tuple[str, str]] = [("Layers", f"{doc['layers']:,}")]
    meta = doc.get("metadata", {})
    if meta.get("nodes") is not None:
        folded = meta.get("folded_nodes", 0)
        extra.append(("Nodes", f"{meta['nodes']:,}" + (f" ({folded:,} constant nodes folded into weights)"
                                                        if folded else "")))
    if "macs" in doc:
        m = doc["macs"]
        text = f"{_count_text(m['total'])} ({m['total']:,})"
        if not m["complete"]:
            text += f", {m['unknown_layers']} layer(s) unknown"
        extra.append(("MACs", text))
    if meta.get("functions"):
        extra.append(("Functions", ", ".join(meta["functions"])))
    if meta.get("shape_inference") and meta["shape_inference"] != "ok":
        extra.append(("Shape inference", str(meta["shape_inference"])))
    if meta.get("unused_initializers"):
        names = meta["unused_initializers"]
        extra.append(("Unused initializers", f"{len(names)} ({', '.join(names[:5])}{', …' if len(names) > 5 else ''})"))
    for key in sorted(k for k in meta if k not in ("nodes", "folded_nodes", "functions", "shape_inference",
                                                    "unused_initializers")):
        value = meta[key]
        extra.append((key, _one_line(value if isinstance(value, str) else json.dumps(value, default=str))))
    width = max(len(k) for k, _ in extra) + 2
    lines += [f"{k:<{width}}{v}" for k, v in extra]
    if doc["metadata_props"]:
        table("Metadata", [[str(k), _one_line(v)] for k, v in sorted(doc["metadata_props"].items())])
    if doc["security"]:
        table("Security", [[s["code"], s["message"]] for s in doc["security"]])
    if doc["notes"]:
        lines.append("")
        lines.append("Notes")
        lines += [f"  - {_one_line(n, 200)}" for n in doc["notes"]]
    return "\n".join(lines) + "\n"
