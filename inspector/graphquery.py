"""Questions about a ModelGraph's structure that analysers and rules share.

Who produces or consumes a layer, which non-linearity a layer applies, whether it is
weighted or a gate, and walks forward/backward through pass-through layers — for Keras
layers and ONNX nodes alike.  Depends only on :mod:`inspector.ir` and
:mod:`inspector.vocab`, so :mod:`inspector.analysis` and :mod:`inspector.rules` can both use it.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .ir import Inbound, Layer, ModelGraph
from .vocab import (
    ACTIVATION_ALIASES,
    ACTIVATION_TYPES,
    MULTIPLY,
    ONNX_WEIGHTED_OPS,
    PASSTHROUGH,
    RECURRENT,
    WEIGHTED_ROLES,
)

SUM_JOINS = frozenset({"Add", "Sum", "add"})
"""Element-wise sums of computed tensors: where a residual branch rejoins the trunk."""
BRANCH_SCALES = PASSTHROUGH | MULTIPLY | {"Div", "Split", "Slice", "Gather", "Identity", "Cast"}
"""What may lie between a residual branch's last layer and the sum: layer scale, gates
(adaLN-zero's ``gate * x``), LoRA's ``alpha / r``, splits of a modulation vector, reshapes."""

_TFOP = re.compile(r"(?:^|\.)(sigmoid|tanh|relu|relu6|softmax|log_softmax|softplus|softsign|elu|selu|"
                   r"gelu|silu|swish|leaky_relu|hard_sigmoid)$")


def normalize_activation(value: Any) -> str | None:
    """Canonical lower-case name of a serialized Keras activation (``None`` if unknown)."""
    if value is None:
        return "linear"
    if isinstance(value, dict):
        cfg = value.get("config")
        if isinstance(cfg, str):
            value = cfg
        elif isinstance(cfg, dict) and isinstance(cfg.get("name"), str) and value.get("class_name") == "function":
            value = cfg["name"]
        else:
            value = value.get("class_name")
    if not isinstance(value, str):
        return None
    name = value.strip().lower().replace("-", "_")
    name = name.rsplit(".", 1)[-1]
    return ACTIVATION_ALIASES.get(name, name)


def activation_of(layer: Layer) -> str | None:
    """The non-linearity ``layer`` applies to its output: ``"linear"`` for a weighted
    layer without one, a canonical name (``relu``, ``sigmoid`` …) for activation
    layers and fused activations, ``None`` for layers that are not about activation
    (and for recurrent layers, whose activations are internal)."""
    t = layer.type
    cfg = layer.config or {}
    if t in RECURRENT:
        return None
    if t == "Activation":
        return normalize_activation(cfg.get("activation"))
    if t == "ReLU":
        mv = cfg.get("max_value")
        if cfg.get("negative_slope"):
            return "leaky_relu"
        return "relu6" if isinstance(mv, (int, float)) and not isinstance(mv, bool) and mv == 6 else "relu"
    if t in ACTIVATION_TYPES:
        return ACTIVATION_TYPES[t]
    if t == "Clip":
        return "clip"
    if t in ("TFOpLambda", "SlicingOpLambda"):
        fn = cfg.get("function")
        m = _TFOP.search(str(fn)) if fn else None
        return ACTIVATION_ALIASES.get(m.group(1), m.group(1)) if m else None
    if "activation" in cfg:
        return normalize_activation(cfg.get("activation"))
    return None


def is_activation_layer(layer: Layer) -> bool:
    """A layer whose whole job is a non-linearity (not a weighted layer with a fused one)."""
    act = activation_of(layer)
    return act is not None and act != "linear" and not is_weighted(layer)


def nonlinear(layer: Layer) -> bool:
    act = activation_of(layer)
    return act is not None and act != "linear"


def is_weighted(layer: Layer) -> bool:
    """A layer that multiplies by learned weights (Dense, convolutions, Gemm, RNNs …)."""
    if any(w.role in WEIGHTED_ROLES for w in layer.weights):
        return True
    if layer.type in ONNX_WEIGHTED_OPS and layer.weights:
        return True
    sub = layer.subgraph
    return sub is not None and any(True for _ in sub.iter_weights())


def call_inputs(layer: Layer, call: int) -> list[Inbound]:
    """The tensors call number ``call`` of ``layer`` consumes (none past its last call)."""
    return layer.inbound[call] if call < len(layer.inbound) else []


def tensor_inputs(layer: Layer) -> int:
    """How many tensors the layer's first call consumes."""
    return len(call_inputs(layer, 0))


def is_gate(layer: Layer) -> bool:
    """An element-wise product of two computed tensors (not a scaling by a constant):
    what squeeze-and-excitation, GLU, attention gates and swish do with a sigmoid."""
    if layer.type not in MULTIPLY and not (layer.type == "TFOpLambda"
                                           and str((layer.config or {}).get("function", "")).endswith("multiply")):
        return False
    refs = {(r.layer, r.node_index, r.tensor_index) for r in (layer.inbound[0] if layer.inbound else [])}
    return len(refs) >= 2 and not layer.weights


def producers(graph: ModelGraph, layer: Layer) -> list[Layer]:
    """Layers whose outputs ``layer`` consumes (any call), in input order, once each."""
    seen: list[Layer] = []
    for ref in layer.inbound_flat():
        if ref.layer in graph:
            p = graph.layer(ref.layer)
            if p not in seen:
                seen.append(p)
    return seen


def consumers(graph: ModelGraph, layer: Layer) -> list[Layer]:
    return graph.consumers(layer.name)


def is_output(graph: ModelGraph, layer: Layer) -> bool:
    return any(ref.layer == layer.name for ref in graph.outputs)


Visit = Callable[[Layer], str]
"""A walk's verdict on a layer: ``"yield"`` (report it and stop there), ``"stop"``
(stop there) or ``"go"`` (continue through it)."""


def walk_forward(graph: ModelGraph, start: Layer, visit: Visit) -> Iterator[Layer]:
    """Breadth-first over the consumers of ``start``, as ``visit`` directs."""
    return _walk(graph, start, visit, consumers, None)


def walk_backward(graph: ModelGraph, start: Layer, visit: Visit, *, max_depth: int | None = None) -> Iterator[Layer]:
    """Breadth-first over the producers of ``start``, as ``visit`` directs, at most
    ``max_depth`` layers back (unbounded when ``None``)."""
    return _walk(graph, start, visit, producers, max_depth)


def _walk(graph: ModelGraph, start: Layer, visit: Visit, step: Callable[[ModelGraph, Layer], list[Layer]],
          max_depth: int | None) -> Iterator[Layer]:
    seen = {start.name}
    queue = deque((lay, 1) for lay in step(graph, start))
    while queue:
        lay, depth = queue.popleft()
        if lay.name in seen or max_depth is not None and depth > max_depth:
            continue
        seen.add(lay.name)
        verdict = visit(lay)
        if verdict == "yield":
            yield lay
        elif verdict == "go":
            queue.extend((nxt, depth + 1) for nxt in step(graph, lay))


def first_consumers_through(graph: ModelGraph, layer: Layer, through: Iterable[str]) -> list[Layer]:
    """Consumers of ``layer``, looking through layers whose type is in ``through``."""
    through = frozenset(through)
    return list(walk_forward(graph, layer, lambda lay: "go" if lay.type in through else "yield"))


def source_through(graph: ModelGraph, layer: Layer, through: Iterable[str]) -> Layer | None:
    """The single producer of ``layer``, looking back through layers in ``through``."""
    through = frozenset(through)
    cur = layer
    for _ in range(len(graph.layers) + 1):
        prods = producers(graph, cur)
        if len(prods) != 1:
            return None
        cur = prods[0]
        if cur.type not in through:
            return cur
    return None


def topological(graph: ModelGraph) -> list[Layer]:
    """Layers in an order where producers come before consumers (graph order when
    it already is one, which it is for every loader)."""
    import networkx as nx

    try:
        names = list(nx.topological_sort(graph.nx))
    except nx.NetworkXUnfeasible:  # a cycle: fall back to file order
        return list(graph.layers)
    return [graph.layer(n) for n in names]


def units_of(layer: Layer) -> int | None:
    """Output width of a weighted layer (Keras ``units``/``filters`` or the output
    shape's channel axis)."""
    cfg = layer.config or {}
    for key in ("units", "filters"):
        v = cfg.get(key)
        if isinstance(v, int):
            return v
    shapes = layer.output_shapes
    if shapes and shapes[0]:
        shape = shapes[0]
        axis = 1 if layer.type in ("Conv", "ConvTranspose") else -1
        try:
            d = shape[axis]
        except IndexError:
            return None
        return d if isinstance(d, int) else None
    return None


def input_width(graph: ModelGraph, layer: Layer) -> int | None:
    """Width (channels/features) of the first input of ``layer``."""
    shapes = graph.input_shapes(layer)
    if not shapes or not shapes[0]:
        return None
    axis = 1 if layer.type in ("Conv", "ConvTranspose") else -1
    try:
        d = shapes[0][axis]
    except IndexError:
        return None
    return d if isinstance(d, int) else None


def tensor_producers(graph: ModelGraph) -> dict[str, str]:
    """ONNX tensor name → the layer of ``graph`` that produces it (a node's ``@outputs``,
    an input's ``name``); empty for Keras graphs, whose tensors have no names."""
    out: dict[str, str] = {}
    for lay in graph.layers:
        cfg = lay.config or {}
        if lay.type == "InputLayer" and isinstance(cfg.get("name"), str):
            out.setdefault(cfg["name"], lay.name)
        for tname in cfg.get("@outputs") or ():
            if isinstance(tname, str) and tname:
                out.setdefault(tname, lay.name)
    return out


def outer_captures(graph: ModelGraph) -> dict[str, list[str]]:
    """For each layer of ``graph`` with nested bodies (ONNX ``If``/``Loop``/``Scan``), the
    layers of ``graph`` whose outputs those bodies (at any depth) read through outer-scope
    names: uses that the body's wiring does not show as edges of ``graph``.  Model-local
    function bodies are skipped (a function sees only its own inputs)."""
    captured: dict[str, list[str]] = {}
    names: dict[str, str] | None = None
    for lay in graph.layers:
        stack = [sub for key, sub in lay.subgraphs.items() if key != "function"]
        found: list[str] = []
        while stack:  # no recursion: the nesting depth comes from the file
            sub = stack.pop()
            for inner in sub.layers:
                stack.extend(s for key, s in inner.subgraphs.items() if key != "function")
                cfg = inner.config or {}
                if inner.type != "InputLayer" or not cfg.get("outer_scope"):
                    continue
                names = tensor_producers(graph) if names is None else names
                producer = names.get(str(cfg.get("name")))
                if producer is not None and producer != lay.name and producer not in found:
                    found.append(producer)
        if found:
            captured[lay.name] = found
    return captured


def residual_joins(graph: ModelGraph, layer: Layer) -> list[Layer]:
    """The sums where ``layer``'s output rejoins a skip connection, when that is *all* its
    output does: every path forward (through :data:`BRANCH_SCALES`) ends in an element-wise
    sum whose other operand shares an ancestor with the branch side of the sum, i.e. a path
    around the branch ``layer`` sits on (or gates, as adaLN-zero's ``gate * attn(x)``).
    Empty when any use is something else (the layer is on the trunk)."""
    import networkx as nx

    g = graph.nx
    if layer.name not in g or is_output(graph, layer) or not nx.ancestors(g, layer.name):
        return []

    def visit(n: Layer) -> str:
        through = n.type in BRANCH_SCALES and not is_output(graph, n) and bool(consumers(graph, n))
        return "go" if through else "yield"  # a scale whose result leaves the graph is not a branch

    joins: list[Layer] = []
    for lay in walk_forward(graph, layer, visit):
        if lay.type not in SUM_JOINS:
            return []
        joins.append(lay)
    branch = nx.descendants(g, layer.name) | {layer.name}
    for join in joins:
        side = [p.name for p in producers(graph, join) if p.name in branch]
        feeding = set().union(*(nx.ancestors(g, name) for name in side)) - branch
        others = [p.name for p in producers(graph, join) if p.name not in branch]
        if not others or not any(feeding & (nx.ancestors(g, name) | {name}) for name in others):
            return []
    return joins
