"""The ONNX builder's shortcuts of issue 14's fourth round give what the general paths give: file order
(``None``) exactly when the file is in dependency order, and the build that skips looking at attributes
for graphs (the model's bytes showed none) against the build that looks, including the models that
shortcut must refuse (an attribute typed GRAPHS with no graph in it, a real sub-graph).  No timed
tests: ``bench/bench_extremes.py`` measures the speed."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from helpers.onnx_graphs import described, random_rows, save_unchecked
from helpers.onnx_models import onnx_model, tensor, value_info
from inspector.ir import ModelGraph
from inspector.loaders.onnx import builder as builder_module
from inspector.loaders.onnx import lite
from inspector.loaders.onnx.read import load


# ---- the file-order check ----
def _in_order_per_node(rows: list[tuple[list[str], list[str]]]) -> bool:
    """In dependency order: no tensor first consumed before it is first produced."""
    produced_at: dict[str, int] = {}
    first_use: dict[str, int] = {}
    for i, (inputs, outputs) in enumerate(rows):
        for name in inputs:
            if name not in produced_at and name not in first_use:
                first_use[name] = i
        for out in outputs:
            if out and out not in produced_at:
                produced_at[out] = i
    return not any(produced_at[name] > first_use[name] for name in first_use.keys() & produced_at.keys())


def test_file_order_check_agrees_with_the_per_node_check():
    from inspector.limits import current
    from inspector.loaders.onnx.scope import Task

    rng = random.Random(14)
    seen = set()
    for _ in range(3000):
        pairs = random_rows(rng)
        rows = [("Op", "", "", inputs, outputs, 0) for inputs, outputs in pairs]
        b = builder_module.Builder(Path("m.onnx"), None, None, 0, current(), infer_shapes=False)
        order = b._topological(rows, Task(None, ModelGraph(name="g", format="onnx"), None, "", {}, 0))
        expected = _in_order_per_node(pairs)
        seen.add(expected)
        assert (order is None) == expected, pairs
        if order is not None:
            assert sorted(order) == list(range(len(rows)))  # every node once, in some dependency order
    assert seen == {True, False}


def test_file_order_check_orders_nodes_with_several_outputs_or_none():
    """A node with two outputs and one with none; "c" read at 2, made at 3: a dependency order."""
    from inspector.limits import current
    from inspector.loaders.onnx.scope import Task

    pairs = [(["x"], ["a", "b"]), (["b"], []), (["c"], ["d"]), (["a"], ["c"])]
    rows = [("Op", "", "", inputs, outputs, 0) for inputs, outputs in pairs]
    b = builder_module.Builder(Path("m.onnx"), None, None, 0, current(), infer_shapes=False)
    assert b._topological(rows, Task(None, ModelGraph(name="g", format="onnx"), None, "", {}, 0)) == [0, 1, 3, 2]
    assert not _in_order_per_node(pairs)


# ---- the build that does not look at attributes for graphs ----
def _skeleton_of(model: Any) -> lite.Skeleton:
    skeleton = lite.skeleton(model.SerializeToString())
    assert skeleton is not None
    return skeleton


def _graphs_typed_model() -> Any:
    """An ``Add`` of two stored tensors (so it would fold) with an extra attribute typed GRAPHS that holds
    no graph: the general path does not fold a node with a graph attribute, so neither may the shortcut."""
    from onnx import AttributeProto, helper

    add = helper.make_node("Add", ["w", "v"], ["s"], name="add_consts")
    odd = add.attribute.add()
    odd.name, odd.type = "bodies", AttributeProto.GRAPHS
    nodes = [add, helper.make_node("Mul", ["x", "s"], ["y"], name="mul")]
    inits = [tensor("w", np.ones((2,), dtype=np.float32)), tensor("v", np.ones((2,), dtype=np.float32))]
    return onnx_model(nodes, [value_info("x", [2])], [value_info("y", [2])], inits)


def _plain_model(*, function: bool = True) -> Any:
    """Folds, shape operands, attributes and (``function``) a call of a model-local function: no graph
    anywhere."""
    from onnx import helper

    nodes = [helper.make_node("Add", ["w", "v"], ["s"], name="add_consts"),
             helper.make_node("Mul", ["x", "s"], ["m"], name="mul"),
             helper.make_node("Reshape", ["m", "shape"], ["r"], name="reshape"),
             helper.make_node("Transpose", ["r"], ["t"], name="tr", perm=[1, 0]),
             helper.make_node("Twice", ["t"], ["y"], name="call", domain="local") if function
             else helper.make_node("Relu", ["t"], ["y"], name="call")]
    body = [helper.make_node("Add", ["a", "a"], ["b"], name="double")]
    twice = helper.make_function("local", "Twice", ["a"], ["b"], body, [helper.make_opsetid("", 17)])
    inits = [tensor("w", np.ones((4,), dtype=np.float32)), tensor("v", np.ones((4,), dtype=np.float32)),
             tensor("shape", np.array([2, 2], dtype=np.int64))]
    model = onnx_model(nodes, [value_info("x", [4])], [value_info("y", [2, 2])], inits)
    if function:
        model.opset_import.append(helper.make_opsetid("local", 1))
        model.functions.append(twice)
    return model


def _plain_model_without_functions() -> Any:
    """:func:`_plain_model` without a function: its build overlaps shape inference (a speculative builder)."""
    return _plain_model(function=False)


def _if_model() -> Any:
    from onnx import TensorProto, helper

    branch = helper.make_graph([helper.make_node("Neg", ["x"], ["n"], name="neg")], "then", [],
                               [value_info("n", [2])])
    other = helper.make_graph([helper.make_node("Abs", ["x"], ["e"], name="abs")], "else", [],
                              [value_info("e", [2])])
    nodes = [helper.make_node("If", ["cond"], ["y"], name="if", then_branch=branch, else_branch=other)]
    inputs = [value_info("x", [2]), value_info("cond", [], TensorProto.BOOL)]
    return onnx_model(nodes, inputs, [value_info("y", [2])])


def test_skeleton_is_flat_only_without_graph_attributes():
    assert _skeleton_of(_plain_model()).flat
    assert not _skeleton_of(_if_model()).flat  # a graph held (``g``)
    typed = _skeleton_of(_graphs_typed_model())
    assert not typed.nested and not typed.flat  # typed GRAPHS, no graph in it: not flat all the same


@pytest.mark.parametrize("make", [_plain_model, _plain_model_without_functions, _graphs_typed_model, _if_model])
@pytest.mark.parametrize("infer_shapes", [False, True])
def test_build_without_the_graph_check_is_the_general_build(tmp_path, monkeypatch, make, infer_shapes):
    path = save_unchecked(make(), tmp_path / "m.onnx")
    flat_models: list[Any] = []
    real_layers = builder_module.Builder._node_layers

    def spy(self, *args, **kwargs):  # which models were built without looking at attributes for graphs
        flat_models.append(self.model is self.flat_model)
        return real_layers(self, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(builder_module.Builder, "_node_layers", spy)
        shortcut = load(path, infer_shapes=infer_shapes)
    with monkeypatch.context() as m:
        m.setattr(lite.Skeleton, "flat", property(lambda self: False))  # the general path, every node looked at
        general = load(path, infer_shapes=infer_shapes)
    assert described(shortcut) == described(general)
    # The shortcut is taken for the plain models only (with functions, only without inference: the model
    # built then is the one inference of the inlined calls gave back).
    plain = make is _plain_model_without_functions or (make is _plain_model and not infer_shapes)
    assert any(flat_models) == plain
    if make is _graphs_typed_model:  # not folded: a node with a graph attribute never is
        assert shortcut.layer("add_consts").type == "Add" and "s" not in {w.key for w in shortcut.iter_weights()}
    if make in (_plain_model, _plain_model_without_functions):
        assert "add_consts" not in shortcut and shortcut.metadata["folded_nodes"] == 1
        assert shortcut.layer("tr").config == {"perm": [1, 0], "@outputs": ["t"]}
    if make is _plain_model:
        assert shortcut.layer("call").subgraphs["function"].layer("double").type == "Add"


# ---- the locations read off the parsed bytes ----
def _big_weight_model(*, doc: str = "") -> Any:
    """A ``MatMul`` by a stored weight big enough for :mod:`.wire` to strip (its data read back on demand)."""
    from onnx import helper

    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm", doc_string=doc)]
    inits = [tensor("w", np.ones((32, 32), dtype=np.float32))]
    return onnx_model(nodes, [value_info("x", [1, 32])], [value_info("y", [1, 32])], inits)


def _stripped(path: Path) -> Any:
    from inspector.loaders.onnx import wire

    return wire.strip_file(path)


def _canonical_locations(stripped: Any) -> set[str] | None:
    from inspector.loaders.onnx.external import named_locations

    model = lite.model_proto()
    model.ParseFromString(stripped.data)
    return named_locations(model.SerializeToString())


def test_locations_of_a_file_naming_none_but_the_stripped_tensors_need_no_serialization(tmp_path):
    from inspector.loaders.onnx.external import stripped_locations

    stripped = _stripped(save_unchecked(_big_weight_model(), tmp_path / "m.onnx"))
    assert len(stripped.inline) == 1  # the weight was stripped: a private token names it
    assert stripped_locations(stripped) == _canonical_locations(stripped) == set(stripped.inline)
    stripped.edited = True  # dims bound since: the bytes are no longer the model
    assert stripped_locations(stripped) is None


@pytest.mark.parametrize("case", ["external", "doc"])
def test_locations_are_not_read_off_bytes_naming_another(tmp_path, case):
    """Another ``location`` in the bytes (external data, or only a doc string saying the word): the
    shortcut refuses, and the model's serialization is read, as before."""
    from helpers import hostile as H
    from inspector.loaders.onnx.external import stripped_locations

    if case == "external":
        path = H.onnx_with_external(tmp_path / "m.onnx", "/etc/passwd")
    else:
        path = save_unchecked(_big_weight_model(doc="its location is known"), tmp_path / "m.onnx")
    stripped = _stripped(path)
    assert stripped_locations(stripped) is None
    assert _canonical_locations(stripped) == ({"/etc/passwd"} if case == "external" else set(stripped.inline))


@pytest.mark.parametrize("infer_shapes", [False, True])
@pytest.mark.parametrize("case", ["plain", "external"])
def test_load_with_locations_read_off_the_bytes_is_the_load_that_serializes(tmp_path, monkeypatch, case,
                                                                            infer_shapes):
    from helpers import hostile as H
    from inspector.loaders.onnx import external

    if case == "external":  # a sparse initializer's: only the walk of check_reachable finds it
        path = H.onnx_sparse_external(tmp_path / "m.onnx", "/etc/passwd")
    else:
        path = save_unchecked(_big_weight_model(), tmp_path / "m.onnx")
    shortcut = load(path, infer_shapes=infer_shapes)
    with monkeypatch.context() as m:
        m.setattr(external, "stripped_locations", lambda stripped: None)
        m.setattr(builder_module, "stripped_locations", lambda stripped: None)
        general = load(path, infer_shapes=infer_shapes)
    assert described(shortcut) == described(general)
    assert [(f.code, f.detail) for f in shortcut.security] == [(f.code, f.detail) for f in general.security]
    assert bool(shortcut.security) == (case == "external")
