"""Mermaid flowcharts of a model's architecture, readable even for big models.

The blocks come from :func:`inspector.analysis.diagram.diagram`: a model with at
most ``max_nodes`` layers is drawn layer by layer, a larger one is collapsed
into blocks (by name prefix, with runs of identical blocks folded; else merged
chains or segments of the graph order).

Every label is escaped with Mermaid's ``#code;`` entities, so a hostile layer
name cannot inject Mermaid syntax, HTML or Markdown.
"""

from __future__ import annotations

import re

from ..analysis.diagram import MAX_NODES, Block, Diagram, diagram
from ..ir import ModelGraph
from ..units import count_text

_SAFE = re.compile(r"[A-Za-z0-9 ,.:/()×…·+\-=_]")


def escape(text: str) -> str:
    """Mermaid-safe label text: anything outside a small safe set becomes ``#NN;``."""
    return "".join(ch if _SAFE.fullmatch(ch) else f"#{ord(ch)};" for ch in str(text))


def _node_label(block: Block) -> str:
    if block.is_layer:
        parts = [escape(block.title), escape(block.types[0])]
        if block.detail and block.detail != "?":
            parts.append(escape(block.detail))
        if block.params:
            parts.append(escape(f"{count_text(block.params)} params"))
        return "<br/>".join(parts)
    title = escape(block.title)
    if block.repeat > 1:
        per = len(block.layers) // block.repeat
        line = f"{block.repeat}× {per} layers"
    else:
        line = f"{len(block.layers)} layers"
    if block.params:
        line += f" · {count_text(block.params)} params"
    return f"<b>{title}</b><br/>{escape(line)}"


def render(graph: ModelGraph, *, max_nodes: int | None = MAX_NODES, direction: str = "TD",
           drawn: Diagram | None = None) -> str:
    """A ``flowchart`` in Mermaid syntax (no fences; ``drawn``: the diagram already
    computed for ``graph``)."""
    d = drawn if drawn is not None else diagram(graph, max_nodes=max_nodes)
    lines = [f"flowchart {direction}"]
    inputs = {ref.layer for ref in graph.inputs}
    for i, b in enumerate(d.blocks):
        text = _node_label(b)
        if b.is_layer and (b.types[0] == "InputLayer" or b.layers[0] in inputs):
            lines.append(f'    n{i}(["{text}"])')
        elif b.repeat > 1:
            lines.append(f'    n{i}[["{text}"]]')
        else:
            lines.append(f'    n{i}["{text}"]')
    for src, dst in d.edges:
        lines.append(f"    n{src} --> n{dst}")
    if d.collapsed:
        lines.append("    classDef block fill:#eef3fb,stroke:#3b6fb6,color:#25303b")
        grouped = [f"n{i}" for i, b in enumerate(d.blocks) if not b.is_layer]
        if grouped:
            lines.append(f"    class {','.join(grouped)} block")
    return "\n".join(lines) + "\n"


def caption(graph: ModelGraph, *, max_nodes: int | None = MAX_NODES, drawn: Diagram | None = None) -> str:
    """One sentence saying how the drawing relates to the layers (``drawn``: the
    diagram already computed for ``graph``)."""
    d = drawn if drawn is not None else diagram(graph, max_nodes=max_nodes)
    if not d.collapsed:
        return f"One node per layer ({d.layer_count} nodes, inputs included)."
    how = {"prefix": "grouped by name prefix", "chains": "linear chains merged",
           "segments": "graph order cut into consecutive segments"}[d.method]
    repeats = sum(1 for b in d.blocks if b.repeat > 1)
    extra = f", {repeats} run(s) of identical blocks folded" if repeats else ""
    return f"{d.layer_count} layers shown as {len(d.blocks)} blocks ({how}{extra})."
