"""The ONNX builder's per-node shortcuts of issue 14's second round give what the general paths give:
a constant's operand made once and shared by the layers that consume it alike (each layer keeping
its own weights), the one-output wiring against the loop over outputs (reused output names, several
outputs, empty ones), the fold check that looks at the first input first, and the attributes of a
node read once for both the sub-graph check and the layer's config.  No timed tests:
``bench/bench_extremes.py`` measures the speed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from helpers.onnx_models import onnx_model, tensor, value_info
from inspector.analysis.params import count_params
from inspector.ir import Inbound, Operand
from inspector.loaders.onnx.read import load


def save_onnx(model, path: Path) -> Path:
    """Save ``model`` as it is (no checker: some of these graphs reuse output names on purpose)."""
    path.write_bytes(model.SerializeToString())
    return path


def _shared_constant_model():
    """Two ``Reshape``\\ s to one stored shape, two ``Mul``\\ s by one stored weight, and an ``Add`` that
    takes the stored shape as data (the same constant at a data position)."""
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Reshape", ["x", "shape"], ["r1"], name="reshape1"),
             helper.make_node("Mul", ["r1", "w"], ["m1"], name="mul1"),
             helper.make_node("Reshape", ["m1", "shape"], ["r2"], name="reshape2"),
             helper.make_node("Mul", ["r2", "w"], ["y"], name="mul2"),
             helper.make_node("Add", ["ids", "shape"], ["z"], name="add_ids")]
    inits = [tensor("shape", np.array([2, 4], dtype=np.int64)), tensor("w", np.ones((2, 4), dtype=np.float32))]
    inputs = [value_info("x", [4, 2]), value_info("ids", [2], TensorProto.INT64)]
    outputs = [value_info("y", [2, 4]), value_info("z", [2], TensorProto.INT64)]
    return onnx_model(nodes, inputs, outputs, inits)


def test_layers_consuming_one_constant_alike_share_its_operand(tmp_path):
    graph = load(save_onnx(_shared_constant_model(), tmp_path / "m.onnx"), infer_shapes=False)
    first, second = graph.layer("reshape1").operands[1], graph.layer("reshape2").operands[1]
    assert first is second  # made once (the general path), then found (the shortcut)
    assert first == Operand("shape", "shape", "constant", "int64", (2,), [2, 4])  # what the general path makes
    mul1, mul2 = graph.layer("mul1"), graph.layer("mul2")
    assert mul1.operands[1] is mul2.operands[1]
    assert mul1.operands[1] == Operand("B", "w", "weight", "float32", (2, 4), None)
    # Each layer still gets its own weight record; the stored tensor counts once.
    assert [w.key for w in mul1.weights] == [w.key for w in mul2.weights] == ["w"]
    assert mul1.weights[0] is not mul2.weights[0] and mul1.weights is not mul2.weights
    assert count_params(graph).totals.params == 8
    assert not graph.layer("reshape1").weights and not graph.layer("reshape2").weights


def test_one_constant_at_a_data_position_gets_an_operand_of_its_own(tmp_path):
    """The general path: the stored shape reaching ``Add`` as data is a weight operand there (a constant,
    by the parameter convention) and a weight of that layer, unlike its shape operands."""
    graph = load(save_onnx(_shared_constant_model(), tmp_path / "m.onnx"), infer_shapes=False)
    as_data = graph.layer("add_ids").operands[1]
    as_shape = graph.layer("reshape1").operands[1]
    assert as_data is not as_shape
    assert as_data == Operand("B", "shape", "weight", "int64", (2,), [2, 4])
    assert [(w.key, w.constant) for w in graph.layer("add_ids").weights] == [("shape", True)]


def test_operands_of_a_constant_are_not_shared_between_models(tmp_path):
    """Each build makes its own: a second load gives equal operands, not the same objects."""
    path = save_onnx(_shared_constant_model(), tmp_path / "m.onnx")
    one, two = load(path, infer_shapes=False), load(path, infer_shapes=False)
    assert one.layer("reshape1").operands[1] == two.layer("reshape1").operands[1]
    assert one.layer("reshape1").operands[1] is not two.layer("reshape1").operands[1]


def test_one_output_wiring_matches_the_loop_over_outputs(tmp_path):
    """A one-output node takes the shortcut; a node reusing an output name, a node with two outputs
    (one left empty) take the loop: producers, made-again positions and shapes as before."""
    from onnx import helper

    nodes = [helper.make_node("Relu", ["x"], ["t"], name="first"),          # shortcut
             helper.make_node("Neg", ["x"], ["t"], name="again"),           # reuses 't': the loop
             helper.make_node("Split", ["t"], ["a", ""], name="split", axis=0, num_outputs=2),  # the loop
             helper.make_node("Abs", ["a"], ["y"], name="last")]             # shortcut
    vis = [value_info("t", [4]), value_info("a", [2])]
    model = onnx_model(nodes, [value_info("x", [4])], [value_info("y", [2])], opset=18)
    model.graph.value_info.extend(vis)
    graph = load(save_onnx(model, tmp_path / "m.onnx"), infer_shapes=False)
    assert graph.layer("first").node_shapes == [[(4,)]] and graph.layer("again").node_shapes == [[(4,)]]
    assert graph.layer("split").node_shapes == [[(2,), None]]
    assert graph.layer("split").dtype == "float32" and graph.layer("last").dtype == "float32"
    assert graph.layer("split").inbound == [[Inbound("again", 0, 0)]]  # the latest producer of 't'
    assert graph.layer("last").inbound == [[Inbound("split", 0, 0)]]
    assert graph.layer("last").node_shapes == [[(2,)]]


def test_fold_check_looks_at_the_first_input_first(tmp_path):
    """All-constant nodes fold; a node whose first input is an activation does not (the shortcut), nor one
    whose first input is a constant and a later one an activation (the general check)."""
    from onnx import helper

    nodes = [helper.make_node("Add", ["c", "c"], ["cc"], name="fold_me"),
             helper.make_node("Add", ["x", "cc"], ["a"], name="activation_first"),
             helper.make_node("Add", ["cc", "a"], ["y"], name="constant_first")]
    inits = [tensor("c", np.ones(2, dtype=np.float32))]
    graph = load(save_onnx(onnx_model(nodes, [value_info("x", [2])], [value_info("y", [2])], inits),
                           tmp_path / "m.onnx"), infer_shapes=False)
    assert [lay.name for lay in graph.layers] == ["x", "activation_first", "constant_first"]
    assert graph.metadata["folded_nodes"] == 1
    assert [o.kind for o in graph.layer("constant_first").operands] == ["weight", "input"]


def test_attributes_read_once_serve_the_config_and_the_subgraph_check(tmp_path):
    """A node with attributes and a sub-graph: its config holds every attribute, its body is built."""
    from onnx import TensorProto, helper

    branch = helper.make_graph([helper.make_node("Transpose", ["x"], ["t"], name="tr", perm=[1, 0])], "then",
                               [], [value_info("t", [3, 2])])
    other = helper.make_graph([helper.make_node("Transpose", ["x"], ["e"], name="tr_e", perm=[1, 0])], "else",
                              [], [value_info("e", [3, 2])])
    nodes = [helper.make_node("If", ["cond"], ["y"], name="if", then_branch=branch, else_branch=other)]
    inputs = [value_info("x", [2, 3]), value_info("cond", [], TensorProto.BOOL)]
    graph = load(save_onnx(onnx_model(nodes, inputs, [value_info("y", [3, 2])]), tmp_path / "m.onnx"),
                 infer_shapes=False)
    lay = graph.layer("if")
    assert set(lay.subgraphs) == {"then_branch", "else_branch"}
    assert list(lay.config) == ["else_branch", "then_branch", "@outputs"]  # the file's order (onnx sorts them)
    assert lay.subgraphs["then_branch"].layer("tr").config == {"perm": [1, 0], "@outputs": ["t"]}


def test_node_rows_hold_the_fields_as_lists():
    """Slices of the repeated fields (the fast read) are the lists ``list()`` would make, empty names kept."""
    from onnx import helper

    from inspector.loaders.onnx.scope import node_rows

    nodes = [helper.make_node("Clip", ["x", "", "hi"], ["y"], name="clip"),
             helper.make_node("Split", ["y"], ["a", ""], name="split", axis=0),
             helper.make_node("Constant", [], ["c"], value_float=1.0)]
    rows = node_rows(nodes)
    assert rows == [
        ("Clip", "", "clip", ["x", "", "hi"], ["y"], 0),
        ("Split", "", "split", ["y"], ["a", ""], 1),
        ("Constant", "", "", [], ["c"], 1)]
    assert all(type(row[3]) is list and type(row[4]) is list for row in rows)
