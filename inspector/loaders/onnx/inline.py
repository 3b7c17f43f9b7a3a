"""Model-local function calls inlined for shape inference, so every call's body gets shapes.

ONNX shape inference infers a function call's outputs but records nothing inside the
body, and one body serves every call (each with other input shapes and attributes), so
MACs inside functions were unknown (a TorchScript export with
``export_modules_as_functions`` counted 3% of its cost).  :func:`inline_calls` copies the
main graph with every call replaced by its body — inputs and outputs bound to the call's
tensors, the body's own tensors renamed under a per-call prefix, attribute references
(``ref_attr_name``) replaced by the call's attributes or the function's defaults,
nested calls expanded the same way — and shape inference runs on that copy.  The
builder then builds one body per call (:class:`Inlined` tells it which names a body's
tensors have in the copy) and keeps the call as one layer: the summary shows the call,
its MACs are its body's.

Bounded by the existing limits: a model whose calls expand past ``onnx_expanded_layers``
nodes is refused before the copy or shape inference is made (``LimitExceeded``, as the
build refuses it); calls nested past ``onnx_graph_depth`` stay calls, unknown inside as
before; calls on a cycle of the call graph and functions with sub-graphs (``If``,
``Loop`` bodies, whose outer-scope names would need renaming) are not inlined.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

from ...ir import Shape
from ...limits import Limits
from .budget import FunctionKey, check_function_fan_out, function_key
from .protos import holds_graph, tensor_dims, type_infos
from .walk import cyclic_nodes, iter_nodes_flat

__all__ = ["MARK", "Inlined", "call_attributes", "call_prefix", "function_key", "inline_calls", "restore"]

MARK = "inspector.call/"
"""Prefix of the tensors of inlined bodies (``inspector.call/<node index>/<nested index>/…/name``)."""


@dataclass(slots=True)
class Inlined:
    """What inlining produced: the model to run shape inference on and, per call, the names
    its body's tensors have there; after inference, :meth:`learn` records the types."""

    model: Any
    names: dict[str, dict[str, str]]
    """Call prefix -> body tensor name -> its name in the inlined graph."""
    types: dict[str, tuple[str | None, Shape | None]] = field(default_factory=dict)

    def learn(self, inferred: Any) -> None:
        """Keep the types of every tensor of the inferred, inlined model."""
        g = inferred.graph
        for name, info in type_infos([*g.input, *g.output, *g.value_info]):
            self.types[name] = info
        for t in g.initializer:
            dims = tensor_dims(t)
            if dims is not None:
                self.types.setdefault(t.name, (None, dims))

    def body_types(self, prefix: str) -> dict[str, tuple[str | None, Shape | None]] | None:
        """Types of one call's body tensors by their names in the body; ``None`` if not inlined."""
        names = self.names.get(prefix)
        if names is None or not self.types:
            return None
        return {body: self.types[name] for body, name in names.items() if name in self.types}


def call_prefix(parent: str, index: int) -> str:
    """The prefix of the call at node ``index`` of the main graph (``parent`` empty) or of a body."""
    return f"{parent or MARK}{index}/"


def call_attributes(function: Any, node: Any, outer: dict[str, Any]) -> dict[str, Any]:
    """The attributes a call binds: the function's defaults, then the call's own (a call inside
    a body may refer to the enclosing call's attributes, ``outer``)."""
    attrs = {a.name: a for a in getattr(function, "attribute_proto", [])}
    for a in node.attribute:
        bound = outer.get(a.ref_attr_name) if a.ref_attr_name else a
        if bound is not None:
            attrs[a.name] = bound
    return attrs


def restore(original: Any, inferred: Any) -> Any:
    """``inferred`` (the inlined model after shape inference) with the original nodes and opsets
    back and only the main graph's tensors in its value_info."""
    inferred.graph.ClearField("node")
    inferred.graph.node.extend(original.graph.node)
    inferred.ClearField("opset_import")
    inferred.opset_import.extend(original.opset_import)
    kept = [vi for vi in inferred.graph.value_info if not vi.name.startswith(MARK)]
    inferred.graph.ClearField("value_info")
    inferred.graph.value_info.extend(kept)
    return inferred


def inline_calls(model: Any, lim: Limits, *, checked: bool = False) -> Inlined | None:
    """A copy of ``model`` with its function calls inlined; ``None`` when it calls none.  Refuses a model
    past ``onnx_expanded_layers`` (:func:`.budget.check_function_fan_out`) unless the caller ran that
    check already (``checked``)."""
    if not checked:
        check_function_fan_out(model, lim)
    protos: dict[FunctionKey, Any] = {}
    for f in model.functions:
        protos.setdefault((f.domain, f.name, getattr(f, "overload", "") or ""), f)
    if not protos or not any(function_key(n) in protos for n in model.graph.node):
        return None
    calls = {key: {function_key(n) for n in iter_nodes_flat(f.node) if function_key(n) in protos}
             for key, f in protos.items()}
    blocked = cyclic_nodes(calls) | {key for key, f in protos.items()
                                     if any(holds_graph(n) for n in f.node)}
    import onnx

    nodes, names = _expand(model.graph.node, protos, blocked, lim)
    if not names:
        return None
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    del copy.graph.node[:]
    copy.graph.node.extend(nodes)
    known = {o.domain for o in copy.opset_import}
    for f in protos.values():
        for o in f.opset_import:
            if o.domain not in known:
                copy.opset_import.add(domain=o.domain, version=o.version)
                known.add(o.domain)
    return Inlined(copy, names)


@dataclass(slots=True)
class _Frame:
    """One body being copied: its nodes, prefix, name bindings and the call's attributes."""

    nodes: Iterator[tuple[int, Any]]
    prefix: str
    rename: dict[str, str] | None
    attrs: dict[str, Any]
    depth: int


def _expand(main: Any, protos: dict[FunctionKey, Any], blocked: set[FunctionKey],
            lim: Limits) -> tuple[list[Any], dict[str, dict[str, str]]]:
    """The main graph's nodes with calls replaced by their bodies, without recursion."""
    out: list[Any] = []
    names: dict[str, dict[str, str]] = {}
    admitted = len(main)  # nodes the copy will hold: the main graph's and every body let in so far
    stack = [_Frame(iter(enumerate(main)), "", None, {}, 0)]
    while stack:
        frame = stack[-1]
        item = next(frame.nodes, None)
        if item is None:
            stack.pop()
            continue
        index, node = item
        if frame.rename is not None:
            node = _renamed(node, frame)
        key = function_key(node)
        f = protos.get(key)
        if f is None or key in blocked or frame.depth >= lim.onnx_graph_depth \
                or admitted + len(f.node) > lim.onnx_expanded_layers:
            out.append(node)
            continue
        admitted += len(f.node)
        prefix = call_prefix(frame.prefix, index)
        actual = list(node.input) + [""] * max(0, len(f.input) - len(node.input))  # missing inputs are absent
        bind = {formal: name for formal, name in zip(f.input, actual, strict=False) if formal}
        bind.update({formal: name for formal, name in zip(f.output, node.output, strict=False) if formal and name})
        names[prefix] = bind
        stack.append(_Frame(iter(enumerate(f.node)), prefix, bind, call_attributes(f, node, {}), frame.depth + 1))
    return out, names


def _renamed(node: Any, frame: _Frame) -> Any:
    """A copy of a body node with its tensors renamed into the inlined graph."""
    import onnx

    rename = frame.rename
    assert rename is not None

    def name(t: str) -> str:
        if not t:
            return t
        if t not in rename:
            rename[t] = frame.prefix + t
        return rename[t]

    copy = onnx.NodeProto()
    copy.op_type, copy.domain, copy.name = node.op_type, node.domain, frame.prefix + node.name
    if getattr(node, "overload", ""):
        copy.overload = node.overload
    copy.input.extend(name(t) for t in node.input)
    copy.output.extend(name(t) for t in node.output)
    for a in node.attribute:
        if a.ref_attr_name:
            bound = frame.attrs.get(a.ref_attr_name)
            if bound is None:
                continue  # no value and no default: the attribute is absent
            new = copy.attribute.add()
            new.CopyFrom(bound)
            new.name = a.name
        else:
            copy.attribute.add().CopyFrom(a)
    return copy
