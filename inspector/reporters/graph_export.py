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
(when known), ``weight_tensors`` (how many tensors; JSON also lists them as ``weights``) — see
:mod:`inspector.analysis.graphfacts`.  Edge attributes: ``node_index``, ``tensor_index`` (the first tensor
that flows on the edge), ``tensors`` (how many).
"""

from __future__ import annotations

import json
from typing import Any, Callable

from ..analysis.graphfacts import graph_facts
from ..errors import UsageError
from ..ir import ModelGraph
from ..shapetext import shape_json
from ..textsafe import json_text, visible
from ..units import count_text

SCHEMA = "inspector.graph/1"

def _xml_safe(text: str) -> str:
    """Text XML 1.0 can hold and a terminal shows as it is: control characters as escapes."""
    return visible(text)


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


def to_networkx(graph: ModelGraph) -> Any:
    """A plain ``networkx.DiGraph`` with scalar attributes (what GraphML can hold)."""
    import networkx as nx

    facts = graph_facts(graph)
    g = nx.DiGraph(name=facts.name, format=facts.format, schema=SCHEMA)
    for node in facts.nodes:
        attrs = {k: v for k, v in node.scalars().items() if k != "name"}
        g.add_node(node.name, **attrs)
    for edge in facts.edges:
        g.add_edge(edge.source, edge.target, **edge.attributes())
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
    facts = graph_facts(graph)
    nodes = []
    for lay, f in zip(graph.layers, facts.nodes, strict=True):
        node = {"id": lay.name, **{k: v for k, v in f.scalars().items() if k != "name"}}
        node["output_shapes"] = [shape_json(s) for s in lay.output_shapes]
        node["weights"] = [{"name": w.name, "role": w.role, "shape": list(w.shape), "dtype": w.dtype,
                            "trainable": w.trainable} for w in lay.weights]
        node["config"] = _jsonable(lay.described_config())
        nodes.append(node)
    edges = [{"source": e.source, "target": e.target, **e.attributes()} for e in facts.edges]
    doc = {"schema": SCHEMA, "directed": True, "multigraph": False,
           "graph": {"name": graph.name, "format": graph.format},
           "nodes": nodes, "edges": edges}
    return json_text(json.dumps(doc, indent=indent, ensure_ascii=False)) + "\n"


def _dot_id(text: str) -> str:
    flat = visible(str(text))
    return '"' + flat.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_dot(graph: ModelGraph) -> str:
    facts = graph_facts(graph)
    lines = [f"digraph {_dot_id(graph.name)} {{",
             "  graph [rankdir=TB, fontname=\"Helvetica\"];",
             "  node [shape=box, style=\"rounded,filled\", fillcolor=\"#eef3fb\", color=\"#3b6fb6\", "
             "fontname=\"Helvetica\", fontsize=10];",
             "  edge [color=\"#6b7683\"];"]
    for f in facts.nodes:
        label = f"{visible(f.name)}\n{visible(f.type)}\n{visible(f.output_shape)}"
        if f.params:
            label += f"\n{count_text(f.params)} params"
        attrs = {"label": label, "type": f.type, "output_shape": f.output_shape,
                 "params": str(f.params), "trainable_params": str(f.trainable_params)}
        if f.macs is not None:
            attrs["macs"] = str(f.macs)
        body = ", ".join(f"{k}={_dot_label(v) if k == 'label' else _dot_id(v)}" for k, v in attrs.items())
        lines.append(f"  {_dot_id(f.name)} [{body}];")
    for e in facts.edges:
        lines.append(f"  {_dot_id(e.source)} -> {_dot_id(e.target)} [tensor_index={e.tensor_index}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_label(text: str) -> str:
    """A DOT string whose line breaks are Graphviz's centred ``\\n``."""
    parts = [_dot_id(p)[1:-1] for p in str(text).split("\n")]
    return '"' + "\\n".join(parts) + '"'


def _mermaid(graph: ModelGraph, max_nodes: int | None) -> str:
    from .mermaid import render as mermaid

    return mermaid(graph, max_nodes=max_nodes)


RENDERERS: dict[str, Callable[[ModelGraph, int | None], str]] = {
    "graphml": lambda graph, _max_nodes: render_graphml(graph),
    "json": lambda graph, _max_nodes: render_json(graph),
    "dot": lambda graph, _max_nodes: render_dot(graph),
    "mermaid": _mermaid,
}
"""Graph formats by name: ``render(graph, max_nodes)`` (only Mermaid collapses)."""
FORMATS = tuple(RENDERERS)


def render(graph: ModelGraph, *, fmt: str, max_nodes: int | None = None) -> str:
    """``graph`` in ``fmt`` (one of :data:`FORMATS`)."""
    renderer = RENDERERS.get(fmt)
    if renderer is None:
        raise UsageError(f"unknown graph format {fmt!r}: choose one of {', '.join(FORMATS)}")
    return renderer(graph, max_nodes)
