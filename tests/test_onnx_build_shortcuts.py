"""Shortcuts of the ONNX build give what the general paths give.  The file-order shortcut
(:func:`.builder._reads_in_file_order`) against the general check (:meth:`.Builder._topological`): file order
only where that finds it, the same names read, and the same graph for every model it must refuse (out of order,
cycles, a node reading its own output, a name both stored and made, a folded node made after its consumer,
reused and empty names, nested graphs, functions).  An ``ints`` attribute read as one slice: the values, as a
list of ints, that reading them one by one gives.  ``Weight.constant`` set on the weights that may be constants
only: what marking every weight gives.  No timed tests: ``bench/bench_extremes.py`` measures the
speed."""

from __future__ import annotations

import random
from itertools import chain
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from helpers.onnx_graphs import described, random_rows, save_unchecked
from helpers.onnx_models import onnx_model, tensor, value_info
from inspector.ir import ModelGraph
from inspector.limits import current
from inspector.loaders.onnx import builder as builder_module
from inspector.loaders.onnx.read import load
from inspector.loaders.onnx.scope import Task


def _general_order(rows: list[Any]) -> list[int] | None:
    b = builder_module.Builder(Path("m.onnx"), None, None, 0, current(), infer_shapes=False)
    return b._topological(rows, Task(None, ModelGraph(name="g", format="onnx"), None, "", {}, 0))


def test_shortcut_takes_file_order_only_where_the_general_check_does():
    rng = random.Random(9)
    outcomes = set()
    for _ in range(3000):
        rows = [("Op", "", "", inputs, outputs, 0) for inputs, outputs in random_rows(rng)]
        reads = builder_module._reads_in_file_order(rows)
        general = _general_order(rows)
        if reads is not None:
            assert general is None, rows
            assert reads == set(chain.from_iterable(row[3] for row in rows))
        outcomes.add((reads is None, general is None))
    # Taken; refused out of order; refused in order (a reused output name read before it is made again).
    assert outcomes == {(False, True), (True, False), (True, True)}


def test_an_empty_output_name_does_not_refuse_the_shortcut():
    rows = [("Op", "", "", ["x", ""], ["a"], 0), ("Op", "", "", ["a"], ["", "b"], 0)]
    assert builder_module._reads_in_file_order(rows) == {"x", "", "a"}
    assert _general_order(rows) is None


def _node(op: str, inputs: list[str], outputs: list[str], name: str, **attrs: Any) -> Any:
    from onnx import helper

    return helper.make_node(op, inputs, outputs, name=name, **attrs)


X, Y = value_info("x", [2, 3]), value_info("y", [2, 3])
W = tensor("w", np.ones((2, 3), np.float32))


def _shape_constant() -> Any:
    return _node("Constant", [], ["k"], "kc", value=tensor("kv", np.array([2, 3], np.int64)))


def _chain(order: list[int]) -> Any:
    nodes = [_node("Relu", ["x"], ["a"], "n0"), _node("Add", ["a", "w"], ["b"], "n1"),
             _node("Sigmoid", ["b"], ["y"], "n2")]
    return onnx_model([nodes[i] for i in order], [X], [Y], [W])


def _if_model(*, body_order: list[int]) -> Any:
    from onnx import TensorProto, helper

    body = [_node("Add", ["x", "w"], ["t1"], "ta"), _node("Relu", ["t1"], ["to"], "tr")]
    then_g = helper.make_graph([body[i] for i in body_order], "then", [], [value_info("to", [2, 3])])
    else_g = helper.make_graph([_node("Sigmoid", ["x"], ["eo"], "es")], "else", [], [value_info("eo", [2, 3])])
    cond = value_info("c", [], TensorProto.BOOL)
    return onnx_model([_node("If", ["c"], ["y"], "iff", then_branch=then_g, else_branch=else_g)], [X, cond], [Y], [W])


def _function_model(*, body_order: list[int], main_order: list[int]) -> Any:
    from onnx import helper

    body = [_node("Add", ["fi", "fi"], ["t"], ""), _node("Relu", ["t"], ["fo"], "")]
    f = helper.make_function("local", "F", ["fi"], ["fo"], [body[i] for i in body_order],
                             [helper.make_opsetid("", 17)])
    nodes = [_node("F", ["x"], ["a"], "call", domain="local"), _node("Relu", ["a"], ["y"], "r")]
    model = onnx_model([nodes[i] for i in main_order], [X], [Y])
    model.functions.append(f)
    model.opset_import.append(helper.make_opsetid("local", 1))
    return model


MODELS: dict[str, tuple[Callable[[], Any], bool]] = {
    # name: (model, whether the shortcut takes its graphs in file order)
    "sorted": (lambda: _chain([0, 1, 2]), True),
    "reversed": (lambda: _chain([2, 1, 0]), False),
    "one_swap": (lambda: _chain([1, 0, 2]), False),
    "cycle": (lambda: onnx_model([_node("Add", ["x", "c"], ["a"], "p"), _node("Relu", ["a"], ["c"], "q"),
                                  _node("Relu", ["a"], ["y"], "r")], [X], [Y]), False),
    "reads_its_own_output": (lambda: onnx_model([_node("Add", ["x", "a"], ["a"], "p"),
                                                 _node("Relu", ["a"], ["y"], "r")], [X], [Y]), True),
    "stored_and_made": (lambda: onnx_model([_node("Relu", ["x"], ["w"], "p"), _node("Add", ["w", "w"], ["y"], "r")],
                                           [X], [Y], [W]), True),
    "stored_read_then_made": (lambda: onnx_model([_node("Add", ["w", "x"], ["y"], "r"),
                                                  _node("Relu", ["x"], ["w"], "p")], [X], [Y], [W]), False),
    "input_read_then_made": (lambda: onnx_model([_node("Relu", ["x"], ["y"], "a"), _node("Relu", ["y"], ["x"], "b")],
                                                [X], [Y]), False),
    "folded_after_its_consumer": (lambda: onnx_model([_node("Reshape", ["x", "k"], ["y"], "rs"), _shape_constant()],
                                                     [X], [Y]), False),
    "folded_chain_after_its_consumer": (lambda: onnx_model(
        [_node("Reshape", ["x", "k2"], ["y"], "rs"), _node("Identity", ["k"], ["k2"], "idk"), _shape_constant()],
        [X], [Y]), False),
    "folded_in_order": (lambda: onnx_model(
        [_shape_constant(), _node("Identity", ["k"], ["k2"], "idk"), _node("Reshape", ["x", "k2"], ["y"], "rs")],
        [X], [Y]), True),
    "empty_names": (lambda: onnx_model(
        [_node("Clip", ["x", "", "m"], ["a", ""], ""), _node("Relu", ["a"], ["y"], ""), _node("Relu", [""], [""], "")],
        [X], [Y], [tensor("m", np.array(1, np.float32))]), True),
    "output_name_reused": (lambda: onnx_model([_node("Relu", ["x"], ["a"], "p"), _node("Sigmoid", ["x"], ["a"], "q"),
                                               _node("Relu", ["a"], ["y"], "r")], [X], [Y]), True),
    "output_name_reused_after_a_read": (lambda: onnx_model(
        [_node("Relu", ["x"], ["a"], "p"), _node("Relu", ["a"], ["y"], "r"), _node("Sigmoid", ["x"], ["a"], "q")],
        [X], [Y]), False),
    "undefined_input": (lambda: onnx_model([_node("Add", ["x", "ghost"], ["y"], "p")], [X], [Y]), True),
    "if_body_in_order": (lambda: _if_model(body_order=[0, 1]), True),
    "if_body_out_of_order": (lambda: _if_model(body_order=[1, 0]), False),
    "function_in_order": (lambda: _function_model(body_order=[0, 1], main_order=[0, 1]), True),
    "function_body_out_of_order": (lambda: _function_model(body_order=[1, 0], main_order=[0, 1]), False),
    "function_call_out_of_order": (lambda: _function_model(body_order=[0, 1], main_order=[1, 0]), False),
}


@pytest.mark.parametrize("infer_shapes", [False, True])
@pytest.mark.parametrize("case", sorted(MODELS))
def test_build_with_the_shortcut_is_the_general_build(tmp_path, monkeypatch, case, infer_shapes):
    make, in_order = MODELS[case]
    path = save_unchecked(make(), tmp_path / "m.onnx")
    taken: list[bool] = []
    real = builder_module._reads_in_file_order

    def spy(rows: list[Any]) -> set[str] | None:
        reads = real(rows)
        taken.append(reads is not None)
        return reads

    with monkeypatch.context() as m:
        m.setattr(builder_module, "_reads_in_file_order", spy)
        shortcut = load(path, infer_shapes=infer_shapes)
    with monkeypatch.context() as m:
        m.setattr(builder_module, "_reads_in_file_order", lambda rows: None)  # the general check, every graph
        general = load(path, infer_shapes=infer_shapes)
    assert described(shortcut) == described(general)
    assert taken and all(taken) == in_order
    ordered = any("not in topological order" in note or "has a cycle" in note for note in shortcut.notes)
    assert ordered == (case in {"reversed", "one_swap", "cycle", "stored_read_then_made", "input_read_then_made",
                                "folded_after_its_consumer", "folded_chain_after_its_consumer",
                                "if_body_out_of_order", "function_body_out_of_order", "function_call_out_of_order"})


@pytest.mark.parametrize("values", [[], [0, 2, 1, 3], [-1], [-(2**63), 2**63 - 1]])
def test_ints_attribute_is_the_values_read_one_by_one(values):
    from onnx import AttributeProto, helper

    from inspector.loaders.onnx.protos import attribute_value

    a = helper.make_attribute("perm", values, attr_type=AttributeProto.INTS)
    value = attribute_value(a)
    assert value == [int(x) for x in a.ints] == values
    assert type(value) is list and all(type(x) is int for x in value)


def _weights_model() -> Any:
    """Weights of every kind: a float kernel, a 0-d float, a bool mask, an int8 tensor read as data first and
    by a quantized operator later (a quantized weight only once that is seen), quantization scales, a
    ``Constant`` returned as an output, a stored tensor returned as an output, an ``If`` body's and a
    function's weights."""
    from onnx import TensorProto, helper

    i8 = value_info("xi", [2, 3], TensorProto.INT8)
    then_g = helper.make_graph([_node("Add", ["x", "tb"], ["to"], "t_add")], "then", [], [value_info("to", [2, 3])],
                               initializer=[tensor("tb", np.array(3, np.int64))])
    else_g = helper.make_graph([_node("Mul", ["x", "w"], ["eo"], "e_mul")], "else", [], [value_info("eo", [2, 3])])
    body = [_node("Constant", [], ["fk"], "", value=tensor("fkv", np.array([1, 2], np.int32))),
            _node("Add", ["fi", "fk"], ["fo"], "")]
    f = helper.make_function("local", "F", ["fi"], ["fo"], body, [helper.make_opsetid("", 17)])
    nodes = [_node("MatMul", ["x", "k"], ["a"], "mm"), _node("Add", ["a", "s"], ["b"], "add_scalar"),
             _node("Where", ["mask", "b", "x"], ["c"], "where"), _node("Add", ["xi", "q8"], ["d"], "add_int8"),
             _node("MatMulInteger", ["d", "q8"], ["e"], "mmi"),
             _node("DequantizeLinear", ["xi", "scale", "zp"], ["f"], "dq"),
             _node("Constant", [], ["cv"], "const_out", value=tensor("cvv", np.array([4, 5], np.int64))),
             _node("If", ["cond"], ["g"], "iff", then_branch=then_g, else_branch=else_g),
             _node("F", ["c"], ["h"], "call", domain="local")]
    model = onnx_model(nodes, [X, i8, value_info("cond", [], TensorProto.BOOL)],
                       [value_info("e", [2, 3], TensorProto.INT32), value_info("f", [2, 3]), value_info("g", [2, 3]),
                        value_info("h", [2, 3]), value_info("cv", [2], TensorProto.INT64),
                        value_info("ids", [2], TensorProto.INT64)],
                       [tensor("k", np.ones((3, 3), np.float32)), tensor("s", np.array(2, np.float32)),
                        tensor("mask", np.ones((2, 3), bool)), tensor("q8", np.ones((2, 3), np.int8)),
                        tensor("scale", np.array(0.5, np.float32)), tensor("zp", np.array(0, np.int8)),
                        tensor("w", np.ones((2, 3), np.float32)), tensor("ids", np.array([0, 1], np.int64))])
    model.functions.append(f)
    model.opset_import.append(helper.make_opsetid("local", 1))
    return model


@pytest.mark.parametrize("infer_shapes", [False, True])
def test_constants_marked_from_the_weights_that_may_be_are_those_of_every_weight_looked_at(tmp_path, infer_shapes):
    from inspector.loaders.onnx.paramrule import is_parameter
    from inspector.loaders.onnx.read import _load_binary

    path = save_unchecked(_weights_model(), tmp_path / "m.onnx")
    model, stripped, _ = _load_binary(path, current())  # nothing sent early (the default)
    b = builder_module.Builder(path, model, stripped, path.stat().st_size, current(), infer_shapes=infer_shapes)
    graph = b.build()
    weights = [w for _, lay in graph.walk() for w in lay.weights]  # nested graphs and function bodies too
    marks = {(w.key, w.role): w.constant for w in weights}
    assert marks == {(w.key, w.role): not w.quantization and not is_parameter(w, b._quantized_weights)
                     for w in weights}  # what marking every weight gives
    assert marks[("k", "B")] is False and marks[("s", "B")] is True and marks[("mask", "condition")] is True
    assert marks[("q8", "B")] is False and "q8" in b._quantized_weights  # a constant until MatMulInteger read it
    assert marks[("cv", "value")] is True and marks[("ids", "value")] is True
    assert marks[("iff/then_branch/tb", "B")] is True and marks[("local::F/fk", "B")] is True
