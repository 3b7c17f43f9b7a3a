"""Constant shape subgraphs folded for shape inference.

Exporters compute shapes at run time even when every input shape is static:
TorchScript's ``expand`` becomes ``ConstantOfShape → Mul → Equal → Where →
Expand``, ``view`` becomes ``Shape → Gather → Unsqueeze → Concat → Reshape``.
ONNX's data propagation follows a few of these ops, not ``Where``, ``Equal`` or
``ConstantOfShape``, so the tensor after the ``Expand`` — and every attention
``MatMul`` after it — keeps an unknown shape.

:func:`refine` evaluates the integer subgraphs that depend only on constants
and on static shapes (``Shape`` of a tensor whose shape inference already knows)
with :func:`.fold.evaluate`, hands every folded shape operand (the ``Expand``
target, a ``Reshape`` shape …) to shape inference as a constant, and keeps the
shapes it then infers.  A subgraph that reads a symbolic dim or a value that is
not constant is never folded: those shapes stay unknown.

Bounded: values of at most ``SMALL_VALUE`` elements, ``FOLD_ELEMENTS`` in all
(:class:`.fold.FoldBudget`, result sizes checked before computing), nodes of the
main graph only, and at most ``ROUNDS`` extra shape-inference runs — none at all
when there is nothing to fold, so models whose shapes are already known pay one
pass over their nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from . import inference
from .fold import EVALUATED, FoldBudget, evaluate, is_static, num_elements
from .ops import DEFAULT_DOMAINS, NON_DATA, NOT_FOLDABLE, SMALL_VALUE
from .protos import small_value, tensor_dims, type_info
from .scope import Const

ROUNDS = 3
"""Extra shape-inference runs at most (a shape folded after one run can make the next subgraph static)."""
_SUFFIX = "::inspector_folded"


@dataclass
class _Pass:
    """One walk over the main graph: known small values, and the static shapes inference gave
    (looked up lazily: most tensors are never asked about)."""

    graph: Any
    budget: FoldBudget
    values: dict[str, Any] = field(default_factory=dict)
    stored: set[str] = field(default_factory=set)
    """Tensors whose values shape inference already sees (initializers, ``Constant`` outputs)."""
    shapes: dict[str, Any] = field(default_factory=dict)
    infos: dict[str, Any] | None = None

    def shape(self, name: str) -> Any:
        if self.infos is None:
            self.infos = _value_infos(self.graph)
        if name not in self.shapes:
            vi = self.infos.get(name)
            self.shapes[name] = type_info(vi.type)[1] if vi is not None else None
        return self.shapes[name]

    def const(self, name: str, *, shape_only: bool) -> Const | None:
        if name in self.values:
            v = self.values[name]
            c = Const(name, str(v.dtype), tuple(int(d) for d in v.shape), ())
            c.value, c.evaluated = v, True
            return c
        if shape_only:
            shape = self.shape(name)
            if shape is not None and is_static(shape):
                return Const(name, None, shape, ())  # a static shape: enough for Shape and Size
        return None


def refine(model: Any, *, data_prop: bool) -> tuple[Any, int]:
    """``model`` (already shape-inferred) with the shapes that folding constant shape subgraphs
    reveals, and how many shape operands were folded (shape inference runs as it ran the first time)."""
    def infer(m: Any) -> Any:
        return inference.run_shape_inference(m, data_prop=data_prop)

    budget = FoldBudget()
    done: dict[str, Any] = {}
    for _ in range(ROUNDS):
        if not inference.unresolved_dims(model):
            break  # every dim is known (or symbolic in the file): nothing to fold, not even a pass
        foldable = _fold_pass(model, budget)
        if not foldable.keys() - done.keys():
            break
        done.update(foldable)
        refined = _infer_with(model, done, infer)  # every operand folded so far, not only the new ones
        if refined is None:
            break
        model = refined
    return model, len(done)


def _value_infos(graph: Any) -> dict[str, Any]:
    infos: dict[str, Any] = {}
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        infos[vi.name] = vi
    return infos


def _seed(graph: Any, p: _Pass) -> None:
    """Small integer initializers are known values."""
    for t in graph.initializer:
        p.stored.add(t.name)
        dims = tensor_dims(t)
        if dims is not None and num_elements(dims) <= SMALL_VALUE and t.data_type in _INT_TYPES:
            v = small_value(t)
            if v is not None:
                p.values[t.name] = v


_INT_TYPES = frozenset({2, 3, 4, 5, 6, 7, 9, 12, 13})
"""ONNX integer and bool element types: the values shape computations use."""


def _fold_pass(model: Any, budget: FoldBudget) -> dict[str, Any]:
    """Shape operands (tensor name → value) that fold to constants shape inference does not see,
    on nodes whose output shape is not static yet.  Each node costs a look at its op type, and at
    its inputs only when the op folds or takes shape operands."""
    graph = model.graph
    p = _Pass(graph, budget)
    _seed(graph, p)
    found: dict[str, Any] = {}
    values = p.values
    for node in graph.node:
        op = node.op_type
        if op not in _RELEVANT:
            continue
        if budget.remaining <= 0:
            break
        if op == "Constant":
            if (node.domain or "") in DEFAULT_DOMAINS:
                _constant(node, p)
            continue
        names = list(node.input)
        shape_ops = NON_DATA.get(op, ())
        operands = [names[i] for i in shape_ops if i < len(names) and names[i] in values and names[i] not in p.stored]
        evaluable = op in EVALUATED and (op in _SHAPE_OF or all(not n or n in values for n in names))
        if not (operands or evaluable) or (node.domain or "") not in DEFAULT_DOMAINS:
            continue
        if operands and not _outputs_static(node, p):
            found.update((name, values[name]) for name in operands)
        if evaluable:
            _evaluate(node, names, p)
    return found


_SHAPE_OF = frozenset({"Shape", "Size"})
_RELEVANT = (EVALUATED | frozenset(NON_DATA) | {"Constant"}) - NOT_FOLDABLE


def _outputs_static(node: Any, p: _Pass) -> bool:
    return all(is_static(p.shape(o)) for o in node.output if o)


def _constant(node: Any, p: _Pass) -> None:
    for out in node.output:
        p.stored.add(out)
    for a in node.attribute:
        if a.name == "value" and a.t.data_type in _INT_TYPES:
            dims = tensor_dims(a.t)
            if dims is not None and num_elements(dims) <= SMALL_VALUE:
                v = small_value(a.t)
                if v is not None and node.output:
                    p.values[node.output[0]] = v
        elif a.name in ("value_int", "value_ints") and node.output:
            import numpy as np

            p.values[node.output[0]] = np.array(a.i if a.name == "value_int" else list(a.ints), dtype=np.int64)


def _evaluate(node: Any, names: list[str], p: _Pass) -> None:
    """Fold ``node`` when its inputs are known values (or static shapes, for ``Shape``/``Size``)."""
    if any(a.type in (5, 10) for a in node.attribute):
        return
    shape_only = node.op_type in _SHAPE_OF
    inputs: list[Const | None] = []
    for name in names:
        if not name:
            inputs.append(None)
            continue
        c = p.const(name, shape_only=shape_only)
        if c is None:
            return
        inputs.append(c)
    if not inputs:
        return
    outs = evaluate(node, inputs, lambda c: c.value, budget=p.budget)
    if outs is None:
        return
    for name, v in zip(node.output, outs, strict=False):
        if name and v.dtype.kind in "iub":
            p.values[name] = v


def _infer_with(model: Any, folded: dict[str, Any], infer: Callable[[Any], Any]) -> Any:
    """Shape inference on ``model`` with every folded shape operand given as an initializer; the
    model itself is put back as it was, and gets the inferred shapes (``None`` when inference failed)."""
    from onnx import numpy_helper

    graph = model.graph
    renamed: list[tuple[Any, int, str]] = []
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in folded:
                renamed.append((node, i, name))
                node.input[i] = name + _SUFFIX
    added = len(folded)
    for name, value in folded.items():
        graph.initializer.append(numpy_helper.from_array(value, name + _SUFFIX))
    try:
        outcome = infer(model)
    finally:
        for node, i, name in renamed:
            node.input[i] = name
        del graph.initializer[len(graph.initializer) - added:]
    if isinstance(outcome, str):
        return None
    inferred = outcome.graph
    keep = [vi for vi in inferred.value_info if not vi.name.endswith(_SUFFIX)]
    del graph.value_info[:]
    graph.value_info.extend(keep)
    for target, source in zip(graph.output, inferred.output, strict=False):
        if target.name == source.name:
            target.type.CopyFrom(source.type)
    return model
