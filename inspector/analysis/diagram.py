"""The blocks a drawing of the architecture shows, readable even for big models.

A model with at most ``max_nodes`` layers is drawn layer by layer.  A larger
one is collapsed into *blocks*, so that a pull-request comment shows a picture a
person can follow rather than 177 boxes:

1. **By name prefix.**  Layer names are split into tokens (``/``-separated path
   components, or ``_``/``.``/``:``-separated words); every layer whose first
   ``k`` tokens agree forms one block (``conv2_block1_1_conv`` and
   ``conv2_block1_out`` → ``conv2_block1``).  The finest ``k`` that gives at
   most ``max_nodes`` blocks wins, provided the blocks keep the graph acyclic
   (a block must not be both before and after another) and actually group
   something.
2. **Repeated blocks.**  Consecutive blocks in a chain that hold the same
   sequence of layer types (ResNet's identity blocks) become one node
   ``conv3_block2 … conv3_block4 ×3``.
3. **Fallbacks.**  When names do not group (an ONNX graph with numbered nodes),
   linear chains of layers are merged; if that is still too many, the graph
   order is cut into at most ``max_nodes`` consecutive segments.

The Mermaid reporter (:mod:`inspector.reporters.mermaid`) and the HTML
architecture strip draw the same :class:`Diagram`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence

from ..ir import Layer, ModelGraph
from ..shapetext import format_output
from .params import layer_params

MAX_NODES = 60


@dataclass(frozen=True)
class Block:
    """One node of the drawing: one layer, or several collapsed together."""

    title: str
    layers: tuple[str, ...]
    types: tuple[str, ...]
    """Type of every layer, in graph order."""
    params: int
    repeat: int = 1
    """How many identical consecutive blocks this node stands for."""
    detail: str = ""
    """For a single layer: its output shape."""

    @property
    def is_layer(self) -> bool:
        return len(self.layers) == 1 and self.repeat == 1


@dataclass(frozen=True)
class Diagram:
    blocks: tuple[Block, ...]
    edges: tuple[tuple[int, int], ...]
    collapsed: bool
    method: str
    """``layers``, ``prefix``, ``chains`` or ``segments``: how the blocks were formed."""
    layer_count: int


_SEPARATORS = re.compile(r"[_.:/\-]+")
"""Runs of the characters that part a name's tokens when its layers are not named by ``/`` scopes."""


def _tokens(name: str, sep: str) -> list[str]:
    if sep == "/":
        return [t for t in name.split("/") if t] or [name]
    return [t for t in _SEPARATORS.split(name) if t] or [name]


def _prefixes(name: str, sep: str) -> list[str]:
    """The name's prefixes of 1, 2, … tokens, as written in the name, up to the whole name: the ``k``-token
    prefix is item ``k - 1``, and the last item stands for every ``k`` beyond.  ``sep`` ``/``: the name's
    non-empty ``/`` parts, joined by ``/``; ``_``: the name cut before its ``k``-th run of separators
    (a run at its start is no cut).  Made once per name: the grouping tries every depth."""
    if sep == "/":
        parts = [t for t in name.split("/") if t]
        if not parts:
            return [name]
        out = [parts[0]]
        for part in parts[1:]:
            out.append(f"{out[-1]}/{part}")
        return out
    out = [name[:m.start()] for m in _SEPARATORS.finditer(name) if m.start()]
    out.append(name)
    return out


def _quotient(order: Sequence[str], group_of: dict[str, int], edges: Iterable[tuple[str, str]]
              ) -> tuple[list[tuple[int, int]], bool]:
    """Edges between groups, and whether the grouped graph is acyclic."""
    out: set[tuple[int, int]] = set()
    for u, v in edges:
        a, b = group_of[u], group_of[v]
        if a != b:
            out.add((a, b))
    import networkx as nx

    q = nx.DiGraph()
    q.add_nodes_from(set(group_of.values()))
    q.add_edges_from(out)
    return sorted(out), nx.is_directed_acyclic_graph(q)


def _groups_by_prefix(order: Sequence[str], edges: list[tuple[str, str]], max_nodes: int
                      ) -> list[list[str]] | None:
    best: list[list[str]] | None = None
    for sep in ("/", "_"):
        if sep == "/" and sum("/" in n for n in order) < len(order) / 2:
            continue
        depth = max(len(_tokens(n, sep)) for n in order)
        prefixes = [_prefixes(name, sep) for name in order]
        for k in range(depth, 0, -1):
            column = [own[k - 1] if k <= len(own) else own[-1] for own in prefixes]
            if len(set(column)) > max_nodes:  # counted before any group is made: most depths have too many
                continue
            keys: dict[str, int] = {}
            groups: list[list[str]] = []
            group_of: dict[str, int] = {}
            for name, key in zip(order, column, strict=True):
                at = keys.get(key)
                if at is None:
                    at = keys[key] = len(groups)
                    groups.append([])
                groups[at].append(name)
                group_of[name] = at
            if len(groups) < 2 or len(groups) == len(order):
                break  # coarser k only merges more: nothing useful below
            _, acyclic = _quotient(order, group_of, edges)
            if not acyclic:
                continue
            if best is None or len(groups) > len(best):
                best = groups
            break
    return best


def _chains(order: Sequence[str], edges: list[tuple[str, str]]) -> list[list[str]]:
    succ: dict[str, list[str]] = {n: [] for n in order}
    pred: dict[str, list[str]] = {n: [] for n in order}
    for u, v in edges:
        succ[u].append(v)
        pred[v].append(u)
    groups: list[list[str]] = []
    placed: set[str] = set()
    for name in order:
        if name in placed:
            continue
        chain = [name]
        placed.add(name)
        cur = name
        while len(succ[cur]) == 1:
            nxt = succ[cur][0]
            if len(pred[nxt]) != 1 or nxt in placed:
                break
            chain.append(nxt)
            placed.add(nxt)
            cur = nxt
        groups.append(chain)
    return groups


def _segments(order: Sequence[str], max_nodes: int) -> list[list[str]]:
    size = -(-len(order) // max_nodes)
    return [list(order[i:i + size]) for i in range(0, len(order), size)]


def _topological(graph: ModelGraph) -> list[str]:
    """Layer names in an order where producers come first (graph order when it is one)."""
    import networkx as nx

    names = [lay.name for lay in graph.layers]
    position = {n: i for i, n in enumerate(names)}
    if _in_order(graph.layers, position):  # the sort would give the graph order back: not run on 162,000 layers
        return names
    g = graph.nx
    try:
        return list(nx.lexicographical_topological_sort(g, key=lambda n: position.get(n, 0)))
    except (nx.NetworkXUnfeasible, nx.NetworkXError):
        return names


def _in_order(layers: Sequence[Layer], position: dict[str, int]) -> bool:
    """Is the graph order topological, so that the sort by it gives it back?  Every layer named once (the
    graph has a node per name), and every layer it consumes, if it is one of them, listed before it."""
    if len(position) != len(layers):
        return False
    at = position.get
    return all(at(ref.layer, -1) < i for i, lay in enumerate(layers) for refs in lay.inbound for ref in refs)


def _title(group: list[str], graph: ModelGraph, method: str) -> str:
    if len(group) == 1:
        return group[0]
    if method == "prefix":
        common = group[0]
        for name in group[1:]:
            while not name.startswith(common):
                common = common[:-1]
        common = common.rstrip("_/.:-")
        if common:
            return common
    return f"{group[0]} … {group[-1]}"


def _make_block(group: list[str], graph: ModelGraph, method: str) -> Block:
    layers = [graph.layer(n) for n in group]
    detail = ""
    if len(layers) == 1:
        lay = layers[0]
        detail = format_output(lay.output_shapes, multiple=lay.has_multiple_shapes)
    return Block(title=_title(group, graph, method), layers=tuple(group), types=tuple(lay.type for lay in layers),
                 params=sum(layer_params(lay).params for lay in layers), detail=detail)


def _collapse_repeats(blocks: list[Block], edges: list[tuple[int, int]]) -> tuple[list[Block], list[tuple[int, int]]]:
    """Merge runs of consecutive blocks with identical type sequences that form a chain."""
    succ: dict[int, set[int]] = {i: set() for i in range(len(blocks))}
    pred: dict[int, set[int]] = {i: set() for i in range(len(blocks))}
    for a, b in edges:
        succ[a].add(b)
        pred[b].add(a)
    new_index: dict[int, int] = {}
    out: list[Block] = []
    i = 0
    while i < len(blocks):
        j = i
        while (j + 1 < len(blocks) and not blocks[i].is_layer and blocks[j + 1].types == blocks[i].types
               and succ[j] == {j + 1} and pred[j + 1] == {j}):
            j += 1
        if j > i:
            run = blocks[i:j + 1]
            out.append(Block(title=f"{run[0].title} … {run[-1].title}",
                             layers=tuple(n for b in run for n in b.layers),
                             types=run[0].types, params=sum(b.params for b in run), repeat=len(run)))
        else:
            out.append(blocks[i])
        for k in range(i, j + 1):
            new_index[k] = len(out) - 1
        i = j + 1
    new_edges = sorted({(new_index[a], new_index[b]) for a, b in edges if new_index[a] != new_index[b]})
    return out, new_edges


def diagram(graph: ModelGraph, *, max_nodes: int | None = MAX_NODES) -> Diagram:
    """The blocks and edges to draw (``max_nodes=None``: every layer)."""
    order = _topological(graph)
    names = set(order)
    edges = [(u, v) for u, v in graph.nx.edges() if u in names and v in names]
    groups: list[list[str]] | None
    method = "layers"
    if max_nodes is None or len(order) <= max_nodes:
        groups = [[n] for n in order]
    else:
        max_nodes = max(2, max_nodes)
        groups = _groups_by_prefix(order, edges, max_nodes)
        method = "prefix"
        if groups is None:
            groups, method = _chains(order, edges), "chains"
            if len(groups) > max_nodes:
                groups, method = _segments(order, max_nodes), "segments"
    group_of = {n: i for i, g in enumerate(groups) for n in g}
    # Blocks in order of their first layer.
    qedges, _ = _quotient(order, group_of, edges)
    blocks = [_make_block(g, graph, method) for g in groups]
    if method != "layers":
        blocks, qedges = _collapse_repeats(blocks, qedges)
    return Diagram(tuple(blocks), tuple(qedges), method != "layers", method, len(order))
