"""``--dim NAME=VALUE``: bind a model's symbolic dims to numbers before shapes and MACs are computed.

ONNX: the model's symbols are the names the graph inputs' ``dim_param``s use (``batch``,
``seq``; not the names an exporter gives intermediate tensors, such as ``MatMul555_dim_0``).
Every ``dim_param`` equal to a bound name (graph inputs, outputs and ``value_info``, sub-graphs
included) becomes that ``dim_value`` before shape inference runs, so every shape inferred
downstream is concrete; a ``dim_param`` that is an exporter's expression (``batch*seq``,
``past_seq + 1``) is evaluated where its names are bound.

Keras (and SavedModel): the symbol ``batch`` is the leading ``None`` of every shape; other
unknown dims (a ``None`` sequence length) are anonymous and cannot be bound, except ``seq``, the
sequence length of a token model saved whole without wiring (a keras_hub ``Backbone``), whose
MACs are a formula in it: its binding is kept in ``ModelGraph.metadata["bound_dims"]``.

A name that is not a symbol of the model is a :class:`~inspector.errors.UsageError` naming
the model's symbols, unless the caller collects the names it used (``found``: ``diff`` binds
each of its two models with the names that are its symbols).
"""

from __future__ import annotations

import re
from typing import Any, Iterator, Mapping

from ..errors import UsageError
from ..ir import ModelGraph, Shape
from ..vocab import BOUND_DIMS, SEQ_DIM

__all__ = ["KERAS_BATCH", "MAX_DIM", "bind_graph", "bind_onnx", "onnx_symbols", "unknown_dims"]

MAX_DIM = 2**31 - 1
"""The largest value a dim may be bound to (a bigger one is no model's shape, and overflows onnx's)."""

KERAS_BATCH = "batch"
"""The name of a Keras (or SavedModel) model's leading ``None`` dim."""

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")


def _check(dims: Mapping[str, int], symbols: set[str], found: set[str] | None) -> dict[str, int]:
    """The bindings of ``dims`` that name symbols; an error for any other unless ``found`` collects them."""
    for name, value in dims.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DIM:
            raise UsageError(f"--dim {name}: expected a whole number from 1 to {MAX_DIM:,}, got {value!r}")
    if found is not None:
        found.update(name for name in dims if name in symbols)
        return {name: v for name, v in dims.items() if name in symbols}
    missing = [name for name in dims if name not in symbols]
    if missing:
        raise unknown_dims(missing, symbols)
    return dict(dims)


def unknown_dims(names: list[str], symbols: set[str] | None) -> UsageError:
    """The error for ``--dim`` names that are not symbols of the model (``symbols``: its symbols, if known)."""
    listed = ", ".join(repr(n) for n in names)
    noun = "dim" if len(names) == 1 else "dims"
    if symbols is None:
        return UsageError(f"no symbolic {noun} named {listed} in either model")
    have = ", ".join(sorted(symbols)) if symbols else "none: every dim is fixed or anonymous"
    return UsageError(f"no symbolic {noun} named {listed} in this model (its symbols: {have})")


# -- ONNX ------------------------------------------------------------------------------------
def _value_infos(model: Any) -> Iterator[Any]:
    """The ``ValueInfoProto``s of the main graph and its sub-graphs (no recursion)."""
    from .onnx.walk import iter_nodes_flat

    graphs = [model.graph]
    for node in iter_nodes_flat(model.graph.node):
        for attr in node.attribute:
            if attr.HasField("g"):
                graphs.append(attr.g)
            graphs.extend(attr.graphs)
    for g in graphs:
        yield from g.input
        yield from g.output
        yield from g.value_info


def _dims(info: Any) -> Iterator[Any]:
    t = info.type
    while True:
        which = t.WhichOneof("value")
        if which == "tensor_type" or which == "sparse_tensor_type":
            tensor = getattr(t, which)
            if tensor.HasField("shape"):
                yield from tensor.shape.dim
            return
        if which == "sequence_type":
            t = t.sequence_type.elem_type
        elif which == "optional_type":
            t = t.optional_type.elem_type
        else:
            return


def _names(expression: str) -> list[str]:
    """The symbol names a ``dim_param`` uses (a name, or sums of products of names and numbers)."""
    if expression.startswith("unk__"):
        return []
    out = []
    for factor in re.split(r"[+*]", expression):
        factor = factor.strip()
        if _NAME.match(factor):
            out.append(factor)
    return out


def onnx_symbols(model: Any) -> set[str]:
    """The names the ``dim_param``s of the model's graph inputs use."""
    return {name for info in model.graph.input for d in _dims(info) if d.dim_param for name in _names(d.dim_param)}


def _evaluate(expression: str, dims: Mapping[str, int]) -> int | None:
    """``expression`` (a name, or sums of products of names and whole numbers) with ``dims``
    bound; ``None`` unless every factor is a number or a bound name."""
    total = 0
    for term in expression.split("+"):
        product = 1
        for factor in term.split("*"):
            factor = factor.strip()
            if factor.isascii() and factor.isdigit():
                product *= int(factor)
            elif factor in dims:
                product *= dims[factor]
            else:
                return None
        total += product
    return total


def bind_onnx(model: Any, dims: Mapping[str, int], *, found: set[str] | None = None) -> None:
    """Replace the bound ``dim_param``s of ``model`` (a ``ModelProto``) by numbers, in place."""
    if not dims:
        return
    dims = _check(dims, onnx_symbols(model), found)
    for info in _value_infos(model):
        for d in _dims(info):
            if d.dim_param:
                value = _evaluate(d.dim_param, dims)
                if value is not None:
                    d.dim_value = value  # clears dim_param (a oneof)


# -- Keras, SavedModel ---------------------------------------------------------------------------
def _bound(shape: Shape | None, batch: int) -> Shape | None:
    if shape and shape[0] is None:
        return (batch, *shape[1:])
    return shape


def bind_graph(graph: ModelGraph, dims: Mapping[str, int], *, found: set[str] | None = None) -> None:
    """Bind ``batch`` (the leading ``None`` of every shape) in a Keras or SavedModel graph, in place."""
    if not dims:
        return
    stack = [graph]
    layers = []
    while stack:  # nested models, without recursion
        g = stack.pop()
        for lay in g.layers:
            layers.append(lay)
            stack.extend(lay.subgraphs.values())
    has_batch = any(s and s[0] is None for lay in layers for call in lay.node_shapes for s in call)
    symbols = ({KERAS_BATCH} if has_batch else set()) | ({SEQ_DIM} if _token_model(graph) else set())
    dims = _check(dims, symbols, found)
    if SEQ_DIM in dims:
        graph.metadata[BOUND_DIMS] = {SEQ_DIM: dims[SEQ_DIM]}
    if KERAS_BATCH not in dims:
        return
    batch = dims[KERAS_BATCH]
    for lay in layers:
        lay.node_shapes = [[_bound(s, batch) for s in call] for call in lay.node_shapes]


def _token_model(graph: ModelGraph) -> bool:
    """Whether ``graph`` is a Keras model saved whole without wiring whose weights hold an embedding
    table: its MACs are a formula in ``seq`` (``analysis/macs_keras.py``), which ``--dim seq=N`` binds."""
    return graph.kind == "subclassed" and any(
        "embedding" in (lay.name + lay.type).lower() and any(len(w.shape) == 2 for w in lay.weights)
        for lay in graph.layers)
