"""Shape inference overlapped with the build: a graph built from the file's own types, then
given the types inference found.

ONNX shape inference runs in a helper process (:mod:`.inference`); the builder used to wait
for it, then build from the inferred model.  On a machine with two cores the build can run
while the helper infers: :meth:`.builder.Builder.build` sends the request, builds the graph
*speculatively* from the file's own ``value_info`` types, then waits for the answer:

* inference failed: the speculative graph is the result (the file's types are what the
  sequential build uses then too); only the notes and metadata say how inference went;
* inference succeeded: :func:`inferred_types` decides whether giving the built graph the
  inferred types (:func:`apply`: every layer's ``node_shapes`` and ``dtype``, every
  ``input`` operand's dtype and shape, the ``InputLayer``\\ s; the metadata is recomputed)
  gives exactly the graph a build from the inferred model gives.  Types reach a built graph
  in two ways: copied into those fields (replaced here), or *used*: folding a constant
  whose dtype or shape the type gives (the builder records every such look-up,
  ``Builder.fold_uses``).  When inference changed a used type in a way that changes the
  folded constant, or the graph repeats a tensor name (a layer could not be told from
  another), the graph is built again from the inferred model, exactly as before.

The helper, which finishes before the build on large graphs, also reads the types the inferred main
graph declares (:func:`.inference.declared_types`) and whether its node outputs are named once, so this
process does not spend the time (a third of a second per 100,000 tensors) after its own build; when
these answer, the helper keeps the inferred model and sends it only if a build again needs it.

Only when it is safe (:func:`may_overlap`, :func:`has_subgraphs`): isolation on (otherwise
inference runs here and nothing overlaps), no model-local functions (their calls are inlined
for inference, and call bodies take their types from it), no node attribute holding a
graph (bodies read the enclosing graph's types).  A build that finds a fold likely to change
stops early (:func:`check_use`, :class:`Abandoned`) and the graph is built after inference; a
``Concat`` of stored tensors (a weight split in parts) gets its shape from theirs
(:func:`.fold.propagate_shape`), so it does not stop one.  ``OVERLAP = False`` turns it off.
"""

from __future__ import annotations

from typing import Any, Callable

from ...ir import ModelGraph, Operand, Shape, holds_graphs
from . import inference
from .fold import is_static
from .protos import base_types, declared, holds_graph
from .scope import Const

OVERLAP = True
"""Build while shape inference runs in the helper (``False``: wait for it first, then build)."""

TypeInfo = tuple[str | None, Shape | None]
FoldUse = tuple[str, str, TypeInfo]
"""(kind, tensor, type seen) of a fold that looked up a type: ``fold`` (:meth:`Builder._fold`:
the dtype, and the shape when no value was computed) or ``fill`` (``ConstantOfShape`` dims)."""
_NONE: TypeInfo = (None, None)


class Abandoned(Exception):
    """A speculative build stopped early: a fold used a type inference is likely to change."""


def check_use(uses: list[FoldUse], consts: dict[str, Const]) -> None:
    """Raise :class:`Abandoned` when the last fold recorded in ``uses`` (its constant made, in
    ``consts``) is likely to be built again: its shape came from no type, value or propagation, so
    the inferred type would give it one (a ``ConstantOfShape`` whose dims the file does not declare)."""
    kind, name, (_, shape) = uses[-1]
    if is_static(shape):
        return
    const = consts.get(name)
    if kind == "fill" or (const is not None and const.value is None and not is_static(const.shape)):
        raise Abandoned(name)


def may_overlap(model: Any) -> bool:
    """Can the build of ``model`` run while shape inference does (checked before the request)?  Not
    with isolation off (inference runs here) or model-local functions (their calls are inlined for
    inference, and call bodies take their types from it).  A build abandoned or done again costs only
    what it did while the helper worked, on the other core."""
    return OVERLAP and inference.ISOLATE_INFERENCE and not len(model.functions)


def has_subgraphs(model: Any, pending: inference.Pending) -> bool:
    """Does a node of the main graph hold a graph in an attribute (an ``If``/``Loop``/``Scan`` body)?
    Looked for in Python only when the bytes sent for ``pending`` may have an attribute typed GRAPH;
    a graph elsewhere (GRAPHS, an untyped attribute) is found in the built graph (:func:`nested`)."""
    if pending.request is not None and not pending.graph_typed:
        return False
    return any(holds_graph(n) for n in model.graph.node)


def nested(graph: ModelGraph) -> bool:
    """Has a layer of ``graph`` a sub-graph (built from types of the enclosing graph)?"""
    return any(map(holds_graphs, graph.layers))  # picked from C: 162,000 layers, most hold none


def inferred_types(built: dict[str, TypeInfo], uses: list[FoldUse], consts: dict[str, Const],
                   model: Any, inferred: Any) -> dict[str, TypeInfo] | None:
    """The types a build from ``inferred`` ends with, when the graph built from ``model`` (ending
    with ``built``, its folds having looked up ``uses``, its constants ``consts``) needs only
    them to be that build; ``None`` when it must be built again."""
    before = base_types(declared(model.graph))
    after = inference.declared_types(inferred)  # read by the helper, while this process built
    if after is None:
        after = base_types(declared(inferred.graph))
    if not before.keys() <= after.keys():
        return None
    unique = inference.helper_names_unique(inferred)
    if not (inference.names_unique(inferred.graph) if unique is None else unique):
        return None
    for kind, name, seen in uses:
        now = after.get(name, seen)  # not declared after inference: not before either, the same look-up
        if now == seen:
            continue
        const = consts.get(name)
        if kind != "fold" or const is None or not _same_fold(seen, now, const):
            return None
    types = dict(built)
    types.update(after)  # the build only adds types of tensors nothing declares
    return types


def _same_fold(seen: TypeInfo, now: TypeInfo, const: Const) -> bool:
    """Would the constant ``const`` a fold made from the type ``seen`` be the same from ``now``?

    The fold's dtype is the type's, else the value's (or its first input's); its shape is the
    computed value's, else a static type shape, else the shape propagated from its inputs
    (else the type's)."""
    (d0, s0), (d1, s1) = seen, now
    if const.value is not None:  # shaped by the value; the type gave only the dtype
        own = str(const.value.dtype)
        return (d0 or own) == (d1 or own)
    if d0 != d1 and not (d0 is None and d1 == const.dtype):
        return False
    got = const.shape
    if is_static(s1):
        return got == s1
    if is_static(s0):
        return False  # the fold took the type's shape; from ``now`` it would propagate one
    return got != s0 or s1 == s0  # a propagated shape is kept either way


def apply(graph: ModelGraph, types: dict[str, TypeInfo], consts: dict[str, Const]) -> None:
    """Give the layers of ``graph`` (built without sub-graphs, bodies or functions) the dtypes
    and shapes ``types`` says, as the builder copies them."""
    get = types.get
    for lay in graph.layers:
        config = lay.config
        outs = config.get("@outputs")
        if outs is None:  # an InputLayer: a graph input, or a tensor nothing defines
            lay.dtype, shape = get(config.get("name", ""), _NONE)
            lay.node_shapes = [[shape]]
            continue
        operands = lay.operands
        if len(outs) == 1:  # most layers: no list built by a comprehension
            out = outs[0]
            if lay.type == "Constant" and not operands and out in consts:
                continue  # a constant returned as a graph output: shaped by the constant
            lay.dtype, shape = get(out, _NONE) if out else _NONE
            lay.node_shapes = [[shape]]
        else:
            lay.node_shapes = [[get(out, _NONE)[1] if out else None for out in outs]]
            lay.dtype = get(outs[0], _NONE)[0] if outs and outs[0] else None
        for op in operands:
            if op.kind == "input":
                dtype, shape = get(op.tensor, _NONE)
                if op.dtype != dtype or op.shape != shape:
                    _set_dtype(op, dtype)  # in place: this build's own operand, seen by nothing else yet
                    _set_shape(op, shape)  # (a new one per retyped input cost 0.5 µs × every input)
    graph.invalidate()


_set_dtype: Callable[[Operand, str | None], None] = vars(Operand)["dtype"].__set__
_set_shape: Callable[[Operand, Shape | None], None] = vars(Operand)["shape"].__set__
"""The setters of an :class:`~inspector.ir.Operand`'s ``dtype`` and ``shape`` slots (past the frozen
dataclass's ``__setattr__``): :func:`apply` retypes the operands of the graph the speculative build made."""
