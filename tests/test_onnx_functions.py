"""Shapes and MACs seen through ONNX model-local function calls (inlined for analysis,
one row per call for display), compared with the same model inlined by onnx."""

from __future__ import annotations

import numpy as np
import onnx
import onnx.inliner
import pytest
from onnx import TensorProto, helper, numpy_helper

from inspector.analysis.macs import count_macs
from inspector.analysis.params import count_params
from inspector.loaders import load

OPSETS = [helper.make_opsetid("", 17), helper.make_opsetid("local", 1)]


def _ref(name: str, ref: str, kind: int) -> onnx.AttributeProto:
    """An attribute ``name`` that takes the value of the calling node's attribute ``ref``."""
    return onnx.AttributeProto(name=name, ref_attr_name=ref, type=kind)


def _conv_act() -> onnx.FunctionProto:
    """``local::ConvAct(X, W) -> Y``: a convolution whose stride and slope are the call's attributes
    (``stride`` required, ``alpha`` defaulting to 0.1)."""
    conv = helper.make_node("Conv", ["X", "W"], ["C"], pads=[1, 1, 1, 1])
    conv.attribute.append(_ref("strides", "stride", onnx.AttributeProto.INTS))
    act = helper.make_node("LeakyRelu", ["C"], ["Y"])
    act.attribute.append(_ref("alpha", "alpha", onnx.AttributeProto.FLOAT))
    f = helper.make_function("local", "ConvAct", ["X", "W"], ["Y"], [conv, act], OPSETS[:1], ["stride"])
    f.attribute_proto.append(helper.make_attribute("alpha", 0.1))
    return f


def _block() -> onnx.FunctionProto:
    """``local::Block(X, W1, W2) -> Y``: two nested ``ConvAct`` calls, the second strided by the
    block's own ``s2`` attribute, and a residual-free 1x1 projection."""
    first = helper.make_node("ConvAct", ["X", "W1"], ["A"], domain="local", stride=[1, 1])
    second = helper.make_node("ConvAct", ["A", "W2"], ["Y"], domain="local", alpha=0.2)
    second.attribute.append(_ref("stride", "s2", onnx.AttributeProto.INTS))
    return helper.make_function("local", "Block", ["X", "W1", "W2"], ["Y"], [first, second], OPSETS, ["s2"])


def _weights() -> list[onnx.TensorProto]:
    rng = np.random.default_rng(0)
    shapes = {"w0": (8, 3, 3, 3), "w1": (8, 8, 3, 3), "w2": (16, 8, 3, 3), "w3": (16, 16, 3, 3),
              "w4": (16, 16, 3, 3), "w5": (32, 16, 3, 3)}
    return [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n) for n, s in shapes.items()]


def _model() -> onnx.ModelProto:
    nodes = [
        helper.make_node("ConvAct", ["x", "w0"], ["a"], domain="local", name="stem", stride=[2, 2]),
        helper.make_node("Block", ["a", "w1", "w2"], ["b"], domain="local", name="down", s2=[2, 2]),
        helper.make_node("Block", ["b", "w3", "w4"], ["c"], domain="local", name="same", s2=[1, 1]),
        helper.make_node("ConvAct", ["c", "w5"], ["y"], domain="local", name="head", stride=[1, 1]),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32, 8, 8])], _weights())
    return helper.make_model(graph, opset_imports=OPSETS, functions=[_conv_act(), _block()])


def _conv(out_c: int, in_c: int, side: int) -> int:
    return out_c * side * side * in_c * 9


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    folder = tmp_path_factory.mktemp("functions")
    model = _model()
    onnx.checker.check_model(model)
    with_calls, inlined = folder / "calls.onnx", folder / "inlined.onnx"
    with_calls.write_bytes(model.SerializeToString())
    inlined.write_bytes(onnx.inliner.inline_local_functions(model).SerializeToString())
    return with_calls, inlined


def test_calls_cost_their_bodies_with_their_own_shapes_and_attributes(paths):
    report = count_macs(load(paths[0]))
    assert report.complete
    assert report.layer("stem") == _conv(8, 3, 16)
    assert report.layer("down") == _conv(8, 8, 16) + _conv(16, 8, 8)
    assert report.layer("same") == _conv(16, 16, 8) + _conv(16, 16, 8)
    assert report.layer("head") == _conv(32, 16, 8)


def test_macs_and_parameters_equal_the_inlined_model(paths):
    calls, inlined = load(paths[0]), load(paths[1])
    assert count_macs(calls).total == count_macs(inlined).total
    assert count_macs(inlined).complete
    assert count_params(calls).totals == count_params(inlined).totals
    assert count_params(calls).totals.params == sum(numpy_helper.to_array(w).size for w in _weights())


def test_call_bodies_get_the_shapes_of_the_inlined_model(paths):
    graph = load(paths[0])
    calls = {lay.name: lay for lay in graph.layers}
    assert calls["down"].output_shapes == [(1, 16, 8, 8)] and calls["head"].output_shapes == [(1, 32, 8, 8)]
    down = calls["down"].subgraphs["function"]
    inner = [lay for lay in down.layers if lay.type == "local.ConvAct"]
    assert [lay.output_shapes for lay in inner] == [[(1, 8, 16, 16)], [(1, 16, 8, 8)]]
    body = inner[1].subgraphs["function"]
    conv = next(lay for lay in body.layers if lay.type == "Conv")
    assert conv.config["strides"] == [2, 2] and conv.output_shapes == [(1, 16, 8, 8)]
    act = next(lay for lay in body.layers if lay.type == "LeakyRelu")
    assert act.config["alpha"] == pytest.approx(0.2)
    stem_act = next(lay for lay in calls["stem"].subgraphs["function"].layers if lay.type == "LeakyRelu")
    assert stem_act.config["alpha"] == pytest.approx(0.1)  # the function's default
    same = [lay for lay in calls["same"].subgraphs["function"].layers if lay.type == "local.ConvAct"]
    assert [lay.output_shapes for lay in same] == [[(1, 16, 8, 8)], [(1, 16, 8, 8)]]
    assert down is not calls["same"].subgraphs["function"]  # one body per call


def test_calls_are_still_one_row_each_and_counted_once(paths):
    graph = load(paths[0])
    assert [lay.name for lay in graph.layers if lay.type != "InputLayer"] == ["stem", "down", "same", "head"]
    assert graph.metadata["nodes"] == 4 + 2 + 2  # the main graph and each function body once
    assert graph.metadata["functions"] == ["local::Block", "local::ConvAct"]


def test_function_with_a_subgraph_keeps_its_shared_body(tmp_path):
    """A body with an ``If`` is not inlined (its branches would need renaming): one shared body, as before."""
    then = helper.make_graph([helper.make_node("Identity", ["X"], ["t"])], "then", [],
                             [helper.make_tensor_value_info("t", TensorProto.FLOAT, None)])
    other = helper.make_graph([helper.make_node("Neg", ["X"], ["e"])], "else", [],
                              [helper.make_tensor_value_info("e", TensorProto.FLOAT, None)])
    branch = helper.make_node("If", ["C"], ["Y"], then_branch=then, else_branch=other)
    f = helper.make_function("local", "Pick", ["X", "C"], ["Y"], [branch], OPSETS[:1], [])
    nodes = [helper.make_node("Pick", ["x", "c"], ["a"], domain="local", name="p1"),
             helper.make_node("Pick", ["a", "c"], ["y"], domain="local", name="p2")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
                                           helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    path = tmp_path / "pick.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=OPSETS, functions=[f]).SerializeToString())
    loaded = load(path)
    bodies = [lay.subgraphs["function"] for lay in loaded.layers if "function" in lay.subgraphs]
    assert len(bodies) == 2 and bodies[0] is bodies[1]
    assert count_macs(loaded).total == 0


def _doubling(levels: int) -> onnx.ModelProto:
    """``F<k>`` calls ``F<k-1>`` twice: ``2**levels`` nodes once every call is inlined."""
    functions = [helper.make_function("local", "F0", ["X"], ["Y"], [helper.make_node("Relu", ["X"], ["Y"])],
                                      OPSETS[:1], [])]
    for k in range(1, levels + 1):
        body = [helper.make_node(f"F{k - 1}", ["X"], ["T"], domain="local"),
                helper.make_node(f"F{k - 1}", ["T"], ["Y"], domain="local")]
        functions.append(helper.make_function("local", f"F{k}", ["X"], ["Y"], body, OPSETS, []))
    graph = helper.make_graph([helper.make_node(f"F{levels}", ["x"], ["y"], domain="local")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    return helper.make_model(graph, opset_imports=OPSETS, functions=functions)


def test_inlining_stays_inside_the_expansion_limit(tmp_path, monkeypatch):
    from inspector.errors import LimitExceeded
    from inspector.limits import Limits
    from inspector.loaders.onnx.inline import inline_calls

    inlined = inline_calls(_doubling(5), Limits())
    assert inlined is not None and len(inlined.model.graph.node) == 32
    with pytest.raises(LimitExceeded, match="onnx_expanded_layers"):
        inline_calls(_doubling(5), Limits(onnx_expanded_layers=31))  # refused before any copy
    path = tmp_path / "doubling.onnx"  # 2**40 nodes: refused before shape inference runs on it
    path.write_bytes(_doubling(40).SerializeToString())
    with pytest.raises(LimitExceeded, match="onnx_expanded_layers"):
        load(path)
    small = tmp_path / "small.onnx"
    small.write_bytes(_doubling(5).SerializeToString())
    assert count_macs(load(small)).complete
    monkeypatch.setenv(Limits.env_name("onnx_expanded_layers"), "31")
    with pytest.raises(LimitExceeded, match="onnx_expanded_layers"):
        load(small)


def test_model_facts_are_the_file_s_not_the_inlined_copy_s(tmp_path):
    """The opsets, nodes and value_info the card shows are the model's own."""
    body = [helper.make_node("Relu", ["X"], ["Y"], domain="")]
    f = helper.make_function("local", "R", ["X"], ["Y"], body, [helper.make_opsetid("", 17),
                                                                  helper.make_opsetid("extra", 1)], [])
    graph = helper.make_graph([helper.make_node("R", ["x"], ["y"], domain="local", name="call")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])])
    path = tmp_path / "r.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=OPSETS, functions=[f]).SerializeToString())
    loaded = load(path)
    assert loaded.metadata["opset_import"] == {"ai.onnx": 17, "local": 1}
    assert loaded.metadata["nodes"] == 2 and loaded.metadata["shape_inference"] == "ok"
    body_layers = loaded.layer("call").subgraphs["function"].layers
    assert [lay.output_shapes for lay in body_layers if lay.type == "Relu"] == [[(2, 3)]]
