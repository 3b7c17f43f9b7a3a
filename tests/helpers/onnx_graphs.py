"""ONNX graphs and what tests compare of them, shared by the tests of the ONNX builder's paths (the overlapped
build, the early request, the hand-off, the build shortcuts): each compares a fast path's graph with the general
path's, field by field.

    from helpers.onnx_graphs import described, graph_fields, hazard_model, random_rows, save_unchecked
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from inspector.ir import ModelGraph


def save_unchecked(model: Any, path: Path) -> Path:
    """Save ``model`` as it is (no checker: some of these graphs are odd on purpose)."""
    path.write_bytes(model.SerializeToString())
    return path


def graph_fields(g: ModelGraph) -> Any:
    """Every field of a graph, nested graphs included, as comparable values."""
    layers = [(lay.name, lay.type, repr(lay.config), repr(lay.node_shapes), lay.dtype, repr(lay.inbound),
               repr([(o.name, o.tensor, o.kind, o.dtype, o.shape, repr(o.value)) for o in lay.operands]),
               repr([(w.name, w.role, w.shape, w.dtype, w.trainable, w.key, w.external, w.quantization)
                     for w in lay.weights]),
               repr(lay.notes), [(k, graph_fields(sub)) for k, sub in lay.subgraphs.items()])
              for lay in g.layers]
    return (g.name, layers, repr(g.inputs), repr(g.outputs), repr(g.notes), repr(g.metadata), repr(g.security))


def described(graph: ModelGraph) -> list[Any]:
    """What the builder decided, nested graphs included."""
    out: list[Any] = [graph.notes, graph.metadata]
    for path, lay in graph.walk():
        out.append((path, lay.type, lay.described_config(), lay.inbound, lay.node_shapes, lay.dtype, lay.notes,
                    [(w.key, w.role, w.shape, w.dtype, w.trainable, w.constant, w.quantization) for w in lay.weights],
                    sorted(lay.subgraphs)))
    return out


def random_rows(rng: random.Random) -> list[tuple[list[str], list[str]]]:
    """Nodes over a few tensor names: some in order, some not, with empty names, reused outputs,
    nodes without inputs or outputs and nodes reading their own output."""
    names = ["", "a", "b", "c", "d", "e", "f"]
    rows = []
    for _ in range(rng.randint(0, 6)):
        rows.append(([rng.choice(names) for _ in range(rng.randint(0, 3))],
                     [rng.choice(names) for _ in range(rng.randint(0, 2))]))
    return rows


def _graph_model(nodes: list, inputs: list, outputs: list, initializers: list, *, value_info: list) -> Any:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializers, value_info=value_info)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _value_info(name: str, shape: list | None = None) -> Any:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _ones(name: str, *shape: int) -> Any:
    return numpy_helper.from_array(np.ones(shape, np.float32), name)


def hazard_model(case: str, x_dims: list[int]) -> Any:
    """Two Concats of a stored ``c`` (3 × c long) beside a Relu of ``x``, read by an Add: ``concat`` (``c``
    4 long: the Concat's output is long), ``declared`` (a ``v`` declared 50 long is read), ``overwritten``
    (a Constant makes ``v`` short before it is read), ``unreached`` (nothing reads it), ``short``, ``fill``
    (a ConstantOfShape fills ``v`` 40 long)."""
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("Concat", ["c", "c"], ["cc"], axis=0, name="cat"),
             helper.make_node("Concat", ["cc", "c"], ["ccc"], axis=0, name="cat2")]  # 3 × c long
    inits = [_ones("c", 4 if case == "concat" else 2)]
    long_declared = case in ("declared", "overwritten", "unreached")
    if case == "overwritten":  # a Constant rewrites the long name short before anything reads it
        nodes.append(helper.make_node("Constant", [], ["v"], name="k",
                                      value=numpy_helper.from_array(np.zeros(3, np.float32))))
    if case == "fill":
        nodes.append(helper.make_node("ConstantOfShape", ["s"], ["v"], name="fill"))
        inits.append(numpy_helper.from_array(np.array([40], np.int64), "s"))
    reader = "v" if long_declared or case == "fill" else "ccc"
    if case != "unreached":
        nodes.append(helper.make_node("Add", ["r", reader], ["y"], name="add"))
    declared = [_value_info("v", [50])] if long_declared else []
    return _graph_model(nodes, [_value_info("x", x_dims)], [_value_info("y")], inits, value_info=declared)
