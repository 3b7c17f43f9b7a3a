"""``inspector graph``: the model's layer graph for other tools.

Formats (all describe the top-level graph: one node per layer, one edge per
producer → consumer pair; a nested Keras model is one node whose
``nested_layers`` attribute counts its layers):

* ``graphml`` — GraphML as networkx writes it (``networkx.read_graphml`` reads
  it back; Gephi, yEd and Cytoscape open it).  GraphML attributes must be
  scalars, so shapes are strings (``(None, 112, 112, 64)``) and lists are left
  out; a MACs count that is unknown is simply absent.
* ``json`` — networkx's node-link format with ``"edges"`` as the edge key
  (``networkx.node_link_graph(doc, edges="edges")`` reads it back), plus
  ``"schema": "inspector.graph/1"``.  Here attributes keep their structure:
  shapes as lists, the weights, the layer configuration.
* ``dot`` — Graphviz (``dot -Tsvg``); written directly, so no graphviz or pydot
  is needed to produce it.
* ``mermaid`` — a Mermaid ``flowchart`` (see :mod:`inspector.reporters.mermaid`;
  every layer unless ``max_nodes`` asks for collapsing).

Node attributes: ``type``, ``index`` (graph order), ``output_shape``, ``params``,
``trainable_params``, ``non_trainable_params``, ``macs`` (when known), ``dtype``
(when known), ``weight_tensors`` (how many tensors; JSON also lists them as ``weights``).  Edge attributes: ``node_index``,
``tensor_index`` (the first tensor that flows on the edge), ``tensors`` (how many).
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..analysis.macs import count_macs
from ..analysis.params import count_params
from ..errors import UsageError
from ..ir import ModelGraph
from .shapes import format_output, shape_json

FORMATS = ("graphml", "json", "dot", "mermaid")
SCHEMA = "inspector.graph/1"

# Characters XML 1.0 cannot hold at all (GraphML is XML).
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _xml_safe(text: str) -> str:
    return _XML_BAD.sub("\N{REPLACEMENT CHARACTER}", text)


def _jsonable(value: Any, depth: int = 0) -> Any:
    """Plain JSON values only (tuples → lists, anything exotic → its ``str``), bounded depth."""
    if depth > 20:
        return str(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, depth + 1) for v in value]
    return str(value)


def node_facts(graph: ModelGraph) -> list[dict[str, Any]]:
    """One dict of scalar facts per layer, in graph order (shared by every format)."""
    params = dict(count_params(graph).layers)
    macs = dict(count_macs(graph).layers)
    out = []
    for i, lay in enumerate(graph.layers):
        p = params[lay.name]
        facts: dict[str, Any] = {
            "name": lay.name, "type": lay.type, "index": i,
            "output_shape": format_output(lay.output_shapes, multiple=lay.has_multiple_shapes),
            "params": p.params, "trainable_params": p.trainable, "non_trainable_params": p.non_trainable,
            "weight_tensors": len(lay.weights),
        }
        if macs.get(lay.name) is not None:
            facts["macs"] = int(macs[lay.name])
        if lay.dtype:
            facts["dtype"] = lay.dtype
        nested = sum(len(sub.layers) for sub in lay.subgraphs.values())
        if nested:
            facts["nested_layers"] = nested
        out.append(facts)
    return out


def _edges(graph: ModelGraph) -> list[tuple[str, str, dict[str, Any]]]:
    g = graph.nx
    order = {lay.name: i for i, lay in enumerate(graph.layers)}
    edges = []
    for u, v, data in g.edges(data=True):
        tensors = data.get("tensors") or []
        edges.append((u, v, {"node_index": int(data.get("node_index", 0)),
                             "tensor_index": int(data.get("tensor_index", 0)),
                             "tensors": len(tensors) or 1}))
    edges.sort(key=lambda e: (order.get(e[1], 0), order.get(e[0], 0)))
    return edges


def to_networkx(graph: ModelGraph) -> Any:
    """A plain ``networkx.DiGraph`` with scalar attributes (what GraphML can hold)."""
    import networkx as nx

    g = nx.DiGraph(name=graph.name, format=graph.format, schema=SCHEMA)
    for facts in node_facts(graph):
        attrs = {k: v for k, v in facts.items() if k != "name"}
        g.add_node(facts["name"], **attrs)
    for u, v, data in _edges(graph):
        g.add_edge(u, v, **data)
    return g


def render_graphml(graph: ModelGraph) -> str:
    import networkx as nx

    g = to_networkx(graph)
    mapping: dict[str, str] = {}
    used: set[str] = set()
    for n in g.nodes:
        safe = _xml_safe(str(n))
        while safe in used:
            safe += "\N{REPLACEMENT CHARACTER}"
        used.add(safe)
        mapping[n] = safe
    if any(k != v for k, v in mapping.items()):
        g = nx.relabel_nodes(g, mapping)
    for _, data in g.nodes(data=True):
        for k, v in list(data.items()):
            if isinstance(v, str):
                data[k] = _xml_safe(v)
    g.graph = {k: _xml_safe(str(v)) for k, v in g.graph.items()}
    return "\n".join(nx.generate_graphml(g, prettyprint=True)) + "\n"


def render_json(graph: ModelGraph, *, indent: int | None = 2) -> str:
    facts = node_facts(graph)
    nodes = []
    for lay, f in zip(graph.layers, facts):
        node = {"id": lay.name, **{k: v for k, v in f.items() if k != "name"}}
        node["output_shapes"] = [shape_json(s) for s in lay.output_shapes]
        node["weights"] = [{"name": w.name, "role": w.role, "shape": list(w.shape), "dtype": w.dtype,
                            "trainable": w.trainable} for w in lay.weights]
        node["config"] = _jsonable(lay.described_config())
        nodes.append(node)
    edges = [{"source": u, "target": v, **d} for u, v, d in _edges(graph)]
    doc = {"schema": SCHEMA, "directed": True, "multigraph": False,
           "graph": {"name": graph.name, "format": graph.format},
           "nodes": nodes, "edges": edges}
    return json.dumps(doc, indent=indent, ensure_ascii=False) + "\n"


def _dot_id(text: str) -> str:
    flat = re.sub(r"[\x00-\x1f\x7f]", " ", str(text))
    return '"' + flat.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_dot(graph: ModelGraph) -> str:
    from .units import count_text

    lines = [f"digraph {_dot_id(graph.name)} {{",
             "  graph [rankdir=TB, fontname=\"Helvetica\"];",
             "  node [shape=box, style=\"rounded,filled\", fillcolor=\"#eef3fb\", color=\"#3b6fb6\", "
             "fontname=\"Helvetica\", fontsize=10];",
             "  edge [color=\"#6b7683\"];"]
    for f in node_facts(graph):
        label = f"{f['name']}\n{f['type']}\n{f['output_shape']}"
        if f["params"]:
            label += f"\n{count_text(f['params'])} params"
        attrs = {"label": label, "type": f["type"], "output_shape": f["output_shape"],
                 "params": str(f["params"]), "trainable_params": str(f["trainable_params"])}
        if "macs" in f:
            attrs["macs"] = str(f["macs"])
        body = ", ".join(f"{k}={_dot_label(v) if k == 'label' else _dot_id(v)}" for k, v in attrs.items())
        lines.append(f"  {_dot_id(f['name'])} [{body}];")
    for u, v, d in _edges(graph):
        lines.append(f"  {_dot_id(u)} -> {_dot_id(v)} [tensor_index={d['tensor_index']}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_label(text: str) -> str:
    """A DOT string whose line breaks are Graphviz's centred ``\\n``."""
    parts = [_dot_id(p)[1:-1] for p in str(text).split("\n")]
    return '"' + "\\n".join(parts) + '"'


def render(graph: ModelGraph, *, fmt: str, max_nodes: int | None = None) -> str:
    """``graph`` in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "graphml":
        return render_graphml(graph)
    if fmt == "json":
        return render_json(graph)
    if fmt == "dot":
        return render_dot(graph)
    if fmt == "mermaid":
        from .mermaid import render as mermaid

        return mermaid(graph, max_nodes=max_nodes)
    raise UsageError(f"unknown graph format {fmt!r}: choose one of {', '.join(FORMATS)}")
