"""Walking ONNX structure without recursion, so hostile nesting cannot overflow
the stack: the structural limits of :mod:`inspector.limits` (node count, nesting
depth, expanded size), every node of nested graphs, and the cycles of a call graph."""

from __future__ import annotations

from typing import Any, Iterable

from ...errors import LimitExceeded
from ...ir import Layer, ModelGraph, holds_graphs
from ...limits import Limits, hint
from .lite import Skeleton


def too_deep(lim: Limits) -> LimitExceeded:
    """The error for sub-graphs and function calls nested past ``onnx_graph_depth``."""
    depth = lim.onnx_graph_depth
    return LimitExceeded(f"nests sub-graphs and function calls more than {depth:,} levels deep, past the "
                         f"onnx_graph_depth limit; {hint('onnx_graph_depth')}")


def too_many_nodes(lim: Limits) -> LimitExceeded:
    """The error for more nodes than ``onnx_nodes`` in a model's graphs, sub-graphs and functions."""
    return LimitExceeded(
        f"has more than {lim.onnx_nodes:,} nodes in its graphs, sub-graphs and functions, past the onnx_nodes "
        f"limit; {hint('onnx_nodes')}")


def too_large(lim: Limits) -> LimitExceeded:
    """The error for nested sub-graphs and function calls that expand past ``onnx_expanded_layers``."""
    return LimitExceeded(
        f"expands to more than {lim.onnx_expanded_layers:,} layers through nested sub-graphs and function calls, "
        f"past the onnx_expanded_layers limit; {hint('onnx_expanded_layers')}")


def check_counts(model: Any, lim: Limits, skeleton: Skeleton | None = None) -> None:
    """Refuse a model with more nodes (``onnx_nodes``) or deeper sub-graphs
    (``onnx_graph_depth``) than allowed; counted iteratively before any real work.
    ``skeleton``: ``model``'s nodes read off its serialized bytes (:func:`.lite.skeleton`), when
    known; when no attribute there holds a graph, the count is its and nothing is walked."""
    max_nodes, max_depth = lim.onnx_nodes, lim.onnx_graph_depth
    if skeleton is not None and not skeleton.nested:  # the main graph and functions only, all at depth 0
        if max_depth < 0:
            raise too_deep(lim)
        if skeleton.nodes > max_nodes:
            raise too_many_nodes(lim)
        return
    total = 0
    stack = [model.graph] + [f for f in model.functions]
    depth_stack = [(s, 0) for s in stack]
    while depth_stack:
        g, depth = depth_stack.pop()
        if depth > max_depth:
            raise too_deep(lim)
        total += len(g.node)
        if total > max_nodes:
            raise too_many_nodes(lim)
        for node in g.node:
            for a in node.attribute:
                if a.type == 5 or a.HasField("g"):
                    depth_stack.append((a.g, depth + 1))
                for sub in a.graphs:
                    depth_stack.append((sub, depth + 1))


def check_expansion(graph: ModelGraph, lim: Limits) -> None:
    """Bound the depth and size of a full walk (shared function bodies count per call)."""
    max_layers, max_depth = lim.onnx_expanded_layers, lim.onnx_graph_depth
    sizes: dict[int, int] = {}
    depths: dict[int, int] = {}
    stack: list[tuple[ModelGraph, bool]] = [(graph, False)]
    on_stack: set[int] = set()
    holders: dict[int, list[Layer]] = {}  # of each graph on the stack, its layers holding any (looked for once)
    while stack:
        g, done = stack.pop()
        gid = id(g)
        if done:
            size, depth = len(g.layers), 1
            for lay in holders.pop(gid):
                for sub in lay.subgraphs.values():
                    size += sizes.get(id(sub), 0)
                    depth = max(depth, depths.get(id(sub), 0) + 1)
            sizes[gid], depths[gid] = size, depth
            on_stack.discard(gid)
            if size > max_layers:
                raise too_large(lim)
            if depth > max_depth:
                raise too_deep(lim)
            continue
        if gid in sizes or gid in on_stack:
            continue
        on_stack.add(gid)
        stack.append((g, True))
        holders[gid] = nesting = list(filter(holds_graphs, g.layers))  # the few that hold any, found at C speed
        for lay in nesting:
            for sub in lay.subgraphs.values():
                if id(sub) not in sizes and id(sub) not in on_stack:
                    stack.append((sub, False))


def iter_nodes_flat(nodes: Any) -> Iterable[Any]:
    """Every node in ``nodes`` and in their sub-graphs, without recursion."""
    stack = list(nodes)
    while stack:
        node = stack.pop()
        yield node
        for a in node.attribute:
            if a.HasField("g"):
                stack.extend(a.g.node)
            for g in a.graphs:
                stack.extend(g.node)


def cyclic_nodes(edges: dict[Any, set[Any]]) -> set[Any]:
    """Vertices of ``edges`` that lie on a cycle (iterative Tarjan)."""
    index: dict[Any, int] = {}
    low: dict[Any, int] = {}
    on: set[Any] = set()
    stack: list[Any] = []
    result: set[Any] = set()
    counter = 0
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                    advanced = True
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1 or v in edges.get(v, ()):
                    result.update(comp)
    return result
