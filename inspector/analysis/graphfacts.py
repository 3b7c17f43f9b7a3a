"""Per-layer and per-edge facts of the top-level graph, computed once for every
graph export (GraphML, node-link JSON, DOT).

One :class:`NodeFacts` per layer in graph order (type, position, output shape,
parameters, MACs when known, dtype, nested layer count) and one
:class:`EdgeFacts` per producer → consumer pair, sorted by consumer then
producer.  The exporters only choose which facts to write and how.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..ir import ModelGraph
from ..shapetext import format_output
from .macs import count_macs
from .params import count_params


@dataclass(frozen=True, slots=True)
class NodeFacts:
    """The scalar facts of one layer."""

    name: str
    type: str
    index: int
    """Position in graph order."""
    output_shape: str
    params: int
    trainable_params: int
    non_trainable_params: int
    weight_tensors: int
    macs: int | None = None
    dtype: str | None = None
    nested_layers: int = 0
    """Layers of nested models (0: the layer holds none)."""

    def scalars(self) -> dict[str, Any]:
        """The facts as attributes, in a fixed order; unknown MACs, dtype and
        ``nested_layers`` 0 are left out."""
        out: dict[str, Any] = {
            "name": self.name, "type": self.type, "index": self.index, "output_shape": self.output_shape,
            "params": self.params, "trainable_params": self.trainable_params,
            "non_trainable_params": self.non_trainable_params, "weight_tensors": self.weight_tensors,
        }
        if self.macs is not None:
            out["macs"] = self.macs
        if self.dtype:
            out["dtype"] = self.dtype
        if self.nested_layers:
            out["nested_layers"] = self.nested_layers
        return out


@dataclass(frozen=True, slots=True)
class EdgeFacts:
    """One producer → consumer edge: the first tensor on it and how many flow."""

    source: str
    target: str
    node_index: int
    tensor_index: int
    tensors: int

    def attributes(self) -> dict[str, int]:
        return {"node_index": self.node_index, "tensor_index": self.tensor_index, "tensors": self.tensors}


@dataclass(frozen=True)
class GraphFacts:
    """Every node and edge of the top-level graph."""

    name: str
    format: str
    nodes: tuple[NodeFacts, ...]
    edges: tuple[EdgeFacts, ...]


def node_facts(graph: ModelGraph) -> tuple[NodeFacts, ...]:
    """One :class:`NodeFacts` per layer, in graph order."""
    params = dict(count_params(graph).layers)
    macs = dict(count_macs(graph).layers)
    out = []
    for i, lay in enumerate(graph.layers):
        p = params[lay.name]
        m = macs.get(lay.name)
        out.append(NodeFacts(
            name=lay.name, type=lay.type, index=i,
            output_shape=format_output(lay.output_shapes, multiple=lay.has_multiple_shapes),
            params=p.params, trainable_params=p.trainable, non_trainable_params=p.non_trainable,
            weight_tensors=len(lay.weights), macs=int(m) if m is not None else None, dtype=lay.dtype or None,
            nested_layers=sum(len(sub.layers) for sub in lay.subgraphs.values())))
    return tuple(out)


def edge_facts(graph: ModelGraph) -> tuple[EdgeFacts, ...]:
    """Every edge of the layer graph, sorted by consumer then producer (graph order)."""
    order = {lay.name: i for i, lay in enumerate(graph.layers)}
    edges = []
    for u, v, data in graph.nx.edges(data=True):
        tensors = data.get("tensors") or []
        edges.append(EdgeFacts(u, v, int(data.get("node_index", 0)), int(data.get("tensor_index", 0)),
                               len(tensors) or 1))
    edges.sort(key=lambda e: (order.get(e.target, 0), order.get(e.source, 0)))
    return tuple(edges)


def graph_facts(graph: ModelGraph) -> GraphFacts:
    """The facts every graph export writes."""
    return GraphFacts(graph.name, graph.format, node_facts(graph), edge_facts(graph))
