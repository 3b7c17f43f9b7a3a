"""What the ONNX loader does before shape inference is sent the model, made shorter for graphs of many
nodes (issue 14): each fast path is checked against the general one on small models built here, with
cases that must take the general path.

* ``lite.skeleton``: one protobuf parse with twin messages tells the node count, whether any node
  attribute holds a graph, and where the ``Constant``/``Concat``/``ConstantOfShape`` nodes are; then
  ``walk.check_counts`` walks nothing and ``inference.data_prop_hazard`` looks at those nodes only;
* the bytes the model was parsed from are sent for inference as they are (not serialized again), and
  ``lite.all_text_utf8`` runs once they are sent;
* when the build serializes the model anyway, ``check_reachable`` takes the locations read off that
  serialization instead of serializing the model again."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from helpers.onnx_graphs import graph_fields, hazard_model
from inspector import isolation, limits
from inspector.errors import LimitExceeded
from inspector.loaders import load
from inspector.loaders.onnx import builder, external, inference, lite, read, retype, walk, wire

overlap_only = pytest.mark.skipif(not isolation.ISOLATE, reason="the build overlaps only an isolated helper")


def _vi(name: str, shape: list | None = None) -> Any:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _model(nodes: list[Any], inputs: list[Any], outputs: list[Any], inits: list[Any] = (), **kw: Any) -> Any:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits), value_info=kw.pop("value_info", []))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], **kw)
    model.ir_version = 8
    return model


def _w(name: str, *shape: int) -> Any:
    return numpy_helper.from_array(np.ones(shape, np.float32), name)


def _chain(n: int = 5) -> Any:
    names = ["x", *[f"h{i}" for i in range(n - 1)], "y"]
    nodes = [helper.make_node("Relu", [a], [b], name=f"r{i}")
             for i, (a, b) in enumerate(zip(names, names[1:], strict=False))]
    return _model(nodes, [_vi("x", ["batch", 4])], [_vi("y")])


def _if_body(depth: int) -> Any:
    """A graph holding ``depth`` nested ``If`` bodies (``depth`` 0: one ``Identity``)."""
    inner = helper.make_graph([helper.make_node("Identity", ["x"], ["o"])], "leaf", [], [_vi("o")])
    for i in range(depth):
        node = helper.make_node("If", ["c"], ["o"], name=f"if{i}", then_branch=inner, else_branch=inner)
        inner = helper.make_graph([node], f"b{i}", [], [_vi("o")])
    return inner


def _nested(kind: str) -> Any:
    """A model whose nodes hold graphs in one of the ways an attribute can."""
    body = _if_body(0)
    if kind == "g":
        node = helper.make_node("If", ["c"], ["y"], name="if", then_branch=body, else_branch=body)
    elif kind == "graphs":  # a GRAPHS attribute (no standard op has one; the walk counts it all the same)
        node = helper.make_node("Custom", ["c"], ["y"], name="custom", domain="my")
        node.attribute.add(name="bodies", type=helper.AttributeProto.GRAPHS).graphs.extend([body, body])
    elif kind == "typed":  # typed GRAPH, no graph set: the walk pushes an empty graph
        node = helper.make_node("Custom", ["c"], ["y"], name="custom", domain="my")
        node.attribute.add(name="body", type=helper.AttributeProto.GRAPH)
    else:  # "function": the graph is held by a node of a model-local function
        inner = helper.make_node("If", ["c"], ["o"], name="if", then_branch=body, else_branch=body)
        fn = helper.make_function("my", "F", ["c"], ["o"], [inner], [helper.make_opsetid("", 17)])
        model = _model([helper.make_node("F", ["c"], ["y"], domain="my")], [_vi("c", [])], [_vi("y")],
                       functions=[fn])
        model.opset_import.append(helper.make_opsetid("my", 1))
        return model
    return _model([node], [_vi("c", [])], [_vi("y")])


def _lim(**changes: int) -> limits.Limits:
    return replace(limits.DEFAULTS, **changes)


def _outcome(call: Any) -> str:
    try:
        call()
    except LimitExceeded as exc:
        return str(exc)
    return "ok"


# -- the skeleton, against the parsed model -----------------------------------------------------------
def _general_count(model: Any) -> int:
    return len(model.graph.node) + sum(len(f.node) for f in model.functions)


def test_the_skeleton_counts_the_nodes_protobuf_parses():
    model = _chain(7)
    fn = helper.make_function("my", "F", ["a"], ["b"], [helper.make_node("Relu", ["a"], ["t"]),
                                                         helper.make_node("Neg", ["t"], ["b"])],
                              [helper.make_opsetid("", 17)])
    model.functions.append(fn)
    found = lite.skeleton(model.SerializeToString())
    assert found is not None and found.nodes == _general_count(model) == 9 and not found.nested


@pytest.mark.parametrize("kind", ["g", "graphs", "typed", "function"])
def test_the_skeleton_finds_every_way_an_attribute_holds_a_graph(kind):
    found = lite.skeleton(_nested(kind).SerializeToString())
    assert found is not None and found.nested


@pytest.mark.parametrize("kind", ["plain", "g", "graphs", "typed", "function"])
@pytest.mark.parametrize("changes", [{}, {"onnx_nodes": 1}, {"onnx_nodes": 0}, {"onnx_graph_depth": 0},
                                     {"onnx_graph_depth": -1}])
def test_check_counts_refuses_what_the_walk_refuses(kind, changes):
    """Same verdict (and words) with the skeleton as with the walk of the parsed model; nested graphs
    (the second case on) take the walk, which alone knows their depth."""
    model = _chain(2) if kind == "plain" else _nested(kind)
    lim = _lim(**changes)
    found = lite.skeleton(model.SerializeToString())
    assert found is not None and found.nested is (kind != "plain")
    assert _outcome(lambda: walk.check_counts(model, lim, found)) == _outcome(lambda: walk.check_counts(model, lim))


def test_a_deep_nesting_is_refused_with_the_skeleton_too():
    model = _model([helper.make_node("If", ["c"], ["y"], then_branch=_if_body(5), else_branch=_if_body(5))],
                   [_vi("c", [])], [_vi("y")])
    found = lite.skeleton(model.SerializeToString())
    assert found is not None and found.nested and found.nodes == 1
    with pytest.raises(LimitExceeded, match="onnx_graph_depth"):
        walk.check_counts(model, _lim(onnx_graph_depth=3), found)


def test_the_skeleton_is_none_without_its_twins_or_for_bytes_protobuf_refuses(monkeypatch):
    assert lite.skeleton(b"\x3a\x85\x01") is None  # a graph field cut short
    monkeypatch.setattr(lite, "_skeleton_twins", lambda: None)
    assert lite.skeleton(_chain().SerializeToString()) is None


_OPS = ("Constant", "Concat", "ConstantOfShape")


def _ops_model() -> Any:
    ops = ["Concat", "Relu", "Concatenate", "Constant", "", "ConstantOfShape", "C" * 200, "Concat", "constant"]
    nodes = [helper.make_node(op, [], [f"o{i}"], name=f"n{i}") for i, op in enumerate(ops)]
    nodes[0].attribute.extend([helper.make_attribute("axis", 0)])
    model = _model(nodes, [], [_vi("o0")])
    fn = helper.make_function("my", "F", [], ["b"], [helper.make_node("Concat", [], ["b"])], [])
    model.functions.append(fn)  # not a node of the main graph
    return model


def test_the_skeleton_finds_the_nodes_of_given_ops_where_the_model_has_them():
    model = _ops_model()
    found = lite.skeleton(model.SerializeToString())
    assert found is not None
    for ops in (_OPS, ("C" * 200,), ("Relu", "Concatenate"), ("Missing",)):
        assert found.main_nodes_of(ops) == [i for i, n in enumerate(model.graph.node) if n.op_type in ops]


def _field(number: int, payload: bytes) -> bytes:
    return wire._ld(number, payload)


def test_the_skeleton_reads_bytes_that_are_not_canonical_as_protobuf_does():
    """A node whose ``op_type`` comes twice (the last wins) and after its attributes, with a length written
    in two bytes: what protobuf parses, not what the bytes look like."""
    attr = _field(1, b"axis") + b"\xa0\x01\x02" + b"\x18\x00"  # name, type INT, i = 0
    odd = (_field(4, b"Concat") + _field(5, attr) + b"\x22\x87\x00Squeeze" + _field(1, b"a")
           + b"\x22\x88\x00Constant")
    plain = _field(4, b"Relu") + _field(1, b"a") + _field(2, b"b")
    hidden = b"\x0a" + wire._encode_varint(len(odd)) + odd
    data = _field(7, hidden + _field(1, plain) + _field(2, b"g")) + b"\x08\x08"  # graph, ir_version 8
    model = lite.model_proto()
    model.ParseFromString(data)
    assert [n.op_type for n in model.graph.node] == ["Constant", "Relu"]
    found = lite.skeleton(data)
    assert found is not None and found.nodes == 2 and not found.nested
    assert found.main_nodes_of(_OPS) == [0]
    assert found.main_nodes_of(("Concat", "Squeeze")) == []


# -- the hazard check, by the nodes that set lengths -------------------------------------------------
@pytest.mark.parametrize("case", ["concat", "declared", "overwritten", "unreached", "short", "fill"])
def test_the_hazard_check_by_the_skeleton_says_what_the_pass_over_every_node_says(case, monkeypatch):
    monkeypatch.setattr(inference, "DATA_PROP_ELEMENTS", 10)
    model = hazard_model(case, [3, 4])
    found = lite.skeleton(model.SerializeToString())
    assert found is not None
    at = found.main_nodes_of(inference._LENGTHS)
    assert at == [i for i, n in enumerate(model.graph.node) if n.op_type in inference._LENGTHS]
    looked: list[str] = []
    real = inference._hazard_at
    monkeypatch.setattr(inference, "_hazard_at", lambda node, *a: looked.append(node.name) or real(node, *a))
    general = inference.data_prop_hazard(model.graph)
    every = list(looked)
    looked.clear()
    fast = inference.data_prop_hazard(model.graph, lengths_at=at)
    assert fast == general
    assert bool(general) is (case in ("concat", "declared", "fill"))
    assert "relu" in every
    if case in ("declared", "overwritten", "unreached"):
        assert looked == every  # a long tensor declared: every node, as before
    else:
        assert "relu" not in looked  # no node before a long tensor is known

# -- the bytes parsed, sent as they are ---------------------------------------------------------------
def _sent(monkeypatch: pytest.MonkeyPatch) -> list[bytes | None]:
    sent: list[bytes | None] = []
    real = inference.start_shape_inference

    def spy(model: Any, **kw: Any) -> Any:
        sent.append(kw.get("data"))
        return real(model, **kw)

    monkeypatch.setattr(inference, "start_shape_inference", spy)
    return sent


def _reordered(model: Any) -> bytes:
    """``model``'s bytes with the graph field first: not canonical, the same model."""
    graph = _field(7, model.graph.SerializeToString())
    rest = model.SerializeToString().replace(graph, b"")
    return graph + rest


@overlap_only
def test_the_bytes_parsed_are_sent_for_inference_as_they_are(tmp_path, monkeypatch):
    model = _chain()
    (tmp_path / "odd").mkdir()
    (tmp_path / "plain").mkdir()
    path = tmp_path / "odd" / "m.onnx"
    path.write_bytes(_reordered(model))
    assert path.read_bytes() != model.SerializeToString()
    sent = _sent(monkeypatch)
    graph = load(path)
    assert sent == [path.read_bytes()]  # the file's own bytes (nothing stripped in it)
    canonical = tmp_path / "plain" / "m.onnx"
    canonical.write_bytes(model.SerializeToString())
    sent.clear()
    same = load(canonical)
    assert sent == [model.SerializeToString()]
    assert graph_fields(graph) == graph_fields(same)
    assert graph.layer("r3").node_shapes == [[("batch", 4)]]


@overlap_only
def test_a_model_changed_after_parsing_is_serialized_for_inference(tmp_path, monkeypatch):
    """Dims bound by ``--dim`` change the parsed model: it is serialized (canonical), as before."""
    model = _chain()
    path = tmp_path / "m.onnx"
    path.write_bytes(_reordered(model))
    sent = _sent(monkeypatch)
    graph = load(path, dims={"batch": 3})
    bound = lite.model_proto()
    bound.ParseFromString(path.read_bytes())
    bound.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 3
    assert sent == [bound.SerializeToString()]
    assert graph.layer("r3").node_shapes == [[(3, 4)]]


@pytest.mark.parametrize("overlap", [True, False])
@pytest.mark.parametrize("infer", [True, False])
def test_the_parsed_bytes_are_let_go_and_their_text_checked_on_every_path(tmp_path, monkeypatch, overlap, infer):
    monkeypatch.setattr(retype, "OVERLAP", overlap)
    settled: list[tuple[bool, bool]] = []
    real = wire.StrippedModel.settle

    def spy(self: wire.StrippedModel, **told: bool | None) -> None:
        real(self, **told)  # (``utf8``: what the inference helper found, when it checked these bytes)
        settled.append((self.data == b"", self.all_utf8))

    monkeypatch.setattr(wire.StrippedModel, "settle", spy)
    path = tmp_path / "m.onnx"
    path.write_bytes(_chain().SerializeToString())
    read.load(path, infer_shapes=infer)
    assert settled and settled[0] == (True, True)


# -- the locations read off the serialization made anyway ----------------------------------------------
def _external(tmp_path: Path, location: str) -> Path:
    """A model whose ``Constant`` holds a tensor in external data at ``location`` (the builder does not
    record it: only ``check_reachable`` finds it)."""
    value = numpy_helper.from_array(np.zeros(4, np.float32), "k")
    value.data_location = TensorProto.EXTERNAL
    del value.external_data[:]
    value.external_data.add(key="location", value=location)
    value.ClearField("raw_data")
    nodes = [helper.make_node("Constant", [], ["k"], name="k", value=value),
             helper.make_node("Add", ["x", "k"], ["y"], name="add")]
    (tmp_path / "w.bin").write_bytes(b"\x00" * 16)
    path = tmp_path / "m.onnx"
    path.write_bytes(_model(nodes, [_vi("x", [4])], [_vi("y")]).SerializeToString())
    return path


@overlap_only
@pytest.mark.parametrize("location", ["w.bin", "../outside.bin"])
@pytest.mark.parametrize("dims", [None, {"n": 2}])
def test_check_reachable_takes_the_locations_of_the_serialization_made_for_inference(tmp_path, monkeypatch,
                                                                                     location, dims):
    """Bound dims make the build serialize the model for inference: the locations come from those bytes;
    otherwise the build serializes it once after sending the request.  Either way the graph (facts and
    external data listed) is the one the walk alone gives."""
    path = _external(tmp_path, location)
    if dims:
        model = lite.model_proto()
        model.ParseFromString(path.read_bytes())
        model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "n"
        path.write_bytes(model.SerializeToString())
    given: list[Any] = []
    real = external.check_reachable
    monkeypatch.setattr("inspector.loaders.onnx.read.check_reachable",
                        lambda *a, **kw: given.append(kw.get("named")) or real(*a, **kw))
    fast = load(path, dims=dims)
    assert given and given[0] is not None and given[0][0] == {location}
    monkeypatch.setattr(builder, "named_locations", lambda data: None)  # the walk decides
    monkeypatch.setattr(external, "named_locations", lambda data: None)
    general = load(path, dims=dims)
    assert graph_fields(fast) == graph_fields(general)
    assert any(f.code == "SEC003" for f in fast.security) is (location != "w.bin")
    assert {e["location"] for e in fast.metadata["external_data"]} == {location}


def test_without_a_serialization_check_reachable_makes_one(tmp_path, monkeypatch):
    """Shape inference not asked for: nothing was serialized, ``check_reachable`` serializes the model."""
    path = _external(tmp_path, "../outside.bin")
    calls: list[bytes] = []
    real = external.named_locations
    monkeypatch.setattr(external, "named_locations", lambda data: calls.append(data) or real(data))
    graph = read.load(path, infer_shapes=False)
    assert len(calls) == 1
    assert any(f.code == "SEC003" for f in graph.security)


# -- runs of short fields, skipped in one call ----------------------------------------------------------
@pytest.mark.parametrize("window", [wire.WINDOW, 64, 17])
def test_strip_file_counts_the_nodes_of_a_run_of_short_fields_across_window_edges(tmp_path, monkeypatch, window):
    """Many short nodes (lengths of one and two bytes), a few long ones, an initializer stripped: the
    count and the stripped bytes are the field-by-field reading's (``skip_short`` made a no-op)."""
    monkeypatch.setattr(wire, "WINDOW", window)
    names = ["x", *[f"t{i}" for i in range(40)]]
    nodes = [helper.make_node("Relu", [a], [b], name="n" * (3 if i % 3 else 150 if i % 2 else 1100))
             for i, (a, b) in enumerate(zip(names, names[1:], strict=False))]
    nodes.append(helper.make_node("Add", [names[-1], "w"], ["y"]))
    model = _model(nodes, [_vi("x", [300])], [_vi("y")], [numpy_helper.from_array(np.ones(300, np.float32), "w")])
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    fast = wire.strip_file(path, max_nodes=41)
    with pytest.raises(LimitExceeded, match="more than 40 nodes"):
        wire.strip_file(path, max_nodes=40)
    monkeypatch.setattr(wire._Stripper, "skip_short", lambda self, pos, end, node_field: pos)
    general = wire.strip_file(path, max_nodes=41)
    with pytest.raises(LimitExceeded, match="more than 40 nodes"):
        wire.strip_file(path, max_nodes=40)
    def untokened(stripped: wire.StrippedModel) -> bytes:
        return stripped.data.replace(stripped.token_prefix.encode(), b"")

    assert untokened(fast) == untokened(general)
    assert list(fast.inline.values()) == list(general.inline.values())


# -- whole loads, with the skeleton and without -----------------------------------------------------------
@pytest.mark.parametrize("kind", ["chain", "g", "function", "hazard", "short"])
def test_a_load_gives_the_graph_it_gives_without_the_skeleton(tmp_path, monkeypatch, kind):
    monkeypatch.setattr(inference, "DATA_PROP_ELEMENTS", 10)
    model = {"chain": _chain, "hazard": lambda: hazard_model("concat", [3, 4]),
             "short": lambda: hazard_model("short", [3, 4])}.get(kind, lambda: _nested(kind))()
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    given: list[Any] = []
    real = walk.check_counts
    monkeypatch.setattr(builder, "check_counts", lambda m, lim, sk=None: given.append(sk) or real(m, lim, sk))
    fast = load(path)
    assert given[0] is not None and given[0].nested is (kind in ("g", "function"))
    monkeypatch.setattr(lite, "_skeleton_twins", lambda: None)
    given.clear()
    general = load(path)
    assert given == [None]
    assert graph_fields(fast) == graph_fields(general)
    if kind == "hazard":
        assert "without it" in " ".join(fast.notes)
