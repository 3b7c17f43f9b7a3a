"""The graph itself: lookups, walking, nesting without recursion, networkx view."""

from __future__ import annotations

from inspector.ir import Inbound, Layer, ModelGraph, Weight


def nested(depth: int) -> ModelGraph:
    g = ModelGraph(name="leaf", format="keras", layers=[
        Layer("d", "Dense", weights=[Weight("k", "kernel", (2, 2), "float32")])])
    for i in range(depth):
        g = ModelGraph(name=f"m{i}", format="keras", layers=[Layer(f"wrap{i}", "Functional", subgraphs={"model": g})])
    return g


def test_walk_and_weights_survive_hostile_nesting():
    g = nested(5000)  # far beyond Python's recursion limit
    paths = [p for p, _ in g.walk()]
    assert len(paths) == 5001
    assert paths[0] == "wrap4999" and paths[-1].endswith("/d")
    assert [w.name for w in g.iter_weights()] == ["k"]


def test_walk_order_and_paths():
    inner = ModelGraph(name="inner", format="keras", layers=[Layer("a", "Dense"), Layer("b", "Dense")])
    g = ModelGraph(name="outer", format="onnx", layers=[
        Layer("x", "InputLayer"), Layer("iff", "If", subgraphs={"then_branch": inner}), Layer("y", "Relu")])
    assert [p for p, _ in g.walk()] == ["x", "iff", "iff/then_branch/a", "iff/then_branch/b", "y"]


def test_nx_view_carries_keras_indices():
    g = ModelGraph(name="g", format="keras", layers=[
        Layer("x", "InputLayer", inbound=[[]]),
        Layer("s", "Dense", inbound=[[Inbound("x")], [Inbound("s", 0, 0)]]),
        Layer("c", "Concatenate", inbound=[[Inbound("s", 0, 0), Inbound("s", 1, 0)]]),
    ])
    nxg = g.nx
    assert list(nxg.nodes) == ["x", "s", "c"]
    assert nxg.edges["x", "s"]["node_index"] == 0
    assert [t["node_index"] for t in nxg.edges["s", "c"]["tensors"]] == [0, 1]
    assert nxg.has_edge("s", "s")  # the shared layer's second call consumes its first
    assert [lay.name for lay in g.consumers("s")] == ["s", "c"]


def test_weight_bytes_for_sub_byte_and_unknown_dtypes():
    assert Weight("a", "kernel", (3, 5), "int4").nbytes == 8  # 7.5 bytes round up
    assert Weight("b", "kernel", (4,), "bfloat16").nbytes == 8
    assert Weight("c", "kernel", (), "float32").size == 1


def test_each_graph_yields_every_nested_graph_once():
    """A body two layers share (an ONNX function's) is one graph: visited once; a body nested in it too."""
    inner = ModelGraph("inner", "onnx", layers=[Layer("leaf", "Relu")])
    body = ModelGraph("body", "onnx", layers=[Layer("if", "If", subgraphs={"then_branch": inner})])
    main = ModelGraph("main", "onnx", layers=[Layer("call_a", "f", subgraphs={"function": body}),
                                              Layer("plain", "Relu"),
                                              Layer("call_b", "f", subgraphs={"function": body})])
    assert sorted(g.name for g in main.each_graph()) == ["body", "inner", "main"]
    assert [g.name for g in inner.each_graph()] == ["inner"]
    assert len(list(nested(5000).each_graph())) == 5001  # no recursion
