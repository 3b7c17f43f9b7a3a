"""The main process's work before the build, made cheaper for graphs of many nodes (issue 14), each
change checked against the general way on small models built here:

* ``wire.strip_file`` lists the pieces of the stripped model (window slices, ranges of the file) and
  copies them once into one buffer, instead of joining the pieces at every level of nesting."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from helpers.onnx_graphs import graph_fields
from inspector import isolation
from inspector.errors import LimitExceeded, ModelLoadError
from inspector.loaders.onnx import inference, lite, protos, read, wire

overlap_only = pytest.mark.skipif(not isolation.ISOLATE, reason="the build overlaps only an isolated helper")


def _vi(name: str, shape: list | None = None) -> Any:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _w(name: str, *shape: int) -> Any:
    return numpy_helper.from_array(np.arange(np.prod(shape), dtype=np.float32).reshape(shape), name)


def _nested_tensors() -> Any:
    """Big tensors at every depth the stripper walks: initializers, a sparse initializer, a ``Constant``
    in an ``If`` branch, a node of a model-local function; small ones left inline; text between them."""
    branch = helper.make_graph([helper.make_node("Constant", [], ["c"], value=_w("deep", 40, 10))], "then", [],
                               [_vi("c")])
    other = helper.make_graph([helper.make_node("Constant", [], ["e"], value=_w("small", 3))], "else", [], [_vi("e")])
    sparse = helper.make_sparse_tensor(_w("sv", 300), numpy_helper.from_array(np.arange(300, dtype=np.int64), "si"),
                                       [400])
    nodes = [helper.make_node("If", ["cond"], ["b"], name="if" * 200, then_branch=branch, else_branch=other),
             helper.make_node("Add", ["x", "w1"], ["h"], name="a" * 3000),
             helper.make_node("F", ["h"], ["y"], domain="my")]
    body = [helper.make_node("Constant", [], ["k"], value=_w("fk", 500)), helper.make_node("Add", ["i", "k"], ["o"])]
    function = helper.make_function("my", "F", ["i"], ["o"], body, [helper.make_opsetid("", 17)])
    inputs = [_vi("x", [500]), helper.make_tensor_value_info("cond", TensorProto.BOOL, [])]
    inits = [_w("w1", 500), _w("tiny", 2), _w("w2", 7, 100)]
    graph = helper.make_graph(nodes, "g", inputs, [_vi("y")], inits, sparse_initializer=[sparse])
    return helper.make_model(graph, functions=[function],
                             opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("my", 1)])


def _restored(stripped: wire.StrippedModel, path: Path) -> Any:
    """The model parsed from ``stripped.data``, each stripped tensor put back from the file's own bytes."""
    model = lite.model_proto()
    model.ParseFromString(stripped.data)
    stack: list[Any] = [model]
    while stack:
        message = stack.pop()
        for fd, value in message.ListFields():
            if fd.message_type is None:
                continue
            for item in (value if read._is_repeated(fd) else [value]):
                if fd.message_type.name == "TensorProto" and item.data_location == 1:
                    where = stripped.inline.get(item.external_data[0].value)
                    if where is not None:
                        item.ParseFromString(wire.read_range(path, where.start, where.end))
                        continue
                stack.append(item)
    return model


@pytest.mark.parametrize("window", [wire.WINDOW, 4096, 64, 17])
def test_strip_file_assembles_the_model_protobuf_would_parse_from_the_file(tmp_path, monkeypatch, window):
    monkeypatch.setattr(wire, "WINDOW", window)  # small windows: pieces read as ranges, not sliced from the window
    model = _nested_tensors()
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    stripped = wire.strip_file(path)
    assert len(stripped.inline) == 6  # w1, w2, the sparse values and indices, the branch's and the function's constants
    assert len(stripped.data) < path.stat().st_size - 6 * 1000
    assert _restored(stripped, path) == model


def test_strip_stream_assembles_the_same_bytes(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(_nested_tensors().SerializeToString())
    with path.open("rb") as fh:
        streamed = wire.strip_stream(lambda n, pos: os.pread(fh.fileno(), n, pos), path.stat().st_size)
        local = wire.strip_file(path)
    assert bytes(streamed.data).replace(streamed.token_prefix.encode(), b"T") == \
        bytes(local.data).replace(local.token_prefix.encode(), b"T")


def test_a_file_cut_short_while_assembled_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(wire, "WINDOW", 64)
    path = tmp_path / "m.onnx"
    path.write_bytes(_nested_tensors().SerializeToString())
    monkeypatch.setattr(os, "preadv", lambda fd, buffers, pos: 0)  # the bytes after the walk are gone
    with pytest.raises(wire.WireError, match="truncated"):
        wire.strip_file(path)


# -- graph_typed told by the skeleton ----------------------------------------------------------------
def _attribute_models() -> dict[str, Any]:
    """Models whose main-graph nodes hold a graph in every way an attribute can, and flat ones (one whose
    bytes hold ``type: GRAPH``'s encoding in a name, which the scan cannot tell from an attribute)."""
    branch = helper.make_graph([helper.make_node("Relu", ["x"], ["t"])], "b", [], [_vi("t")])
    typed_only = helper.make_attribute("body", branch)
    typed_only.ClearField("g")  # typed GRAPH, no graph set
    untyped = helper.make_attribute("body", branch)
    untyped.ClearField("type")  # a graph set, no type
    graphs = helper.make_node("Custom", ["x"], ["y"], domain="my")
    graphs.attribute.append(helper.make_attribute("bodies", [branch]))
    models = {
        "flat": [helper.make_node("Relu", ["x"], ["y"])],
        "flat-lookalike": [helper.make_node("Relu", ["x"], ["y"], name="n\u00e0\x01\x05")],  # c3 a0 01 05
        "if": [helper.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=branch)],
        "graphs": [graphs],
    }
    for key, attribute in (("typed-only", typed_only), ("untyped", untyped)):
        node = helper.make_node("Custom", ["x"], ["y"], domain="my")
        node.attribute.append(attribute)
        models[key] = [node]
    inputs = [_vi("x", [2]), helper.make_tensor_value_info("c", TensorProto.BOOL, [])]
    return {key: helper.make_model(helper.make_graph(nodes, "g", inputs, [_vi("y")]),
                                   opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("my", 1)])
            for key, nodes in models.items()}


@pytest.mark.parametrize("kind", list(_attribute_models()))
def test_graph_typed_by_the_skeleton_gives_has_subgraphs_the_answer_of_the_scan(kind):
    model = _attribute_models()[kind]
    data = model.SerializeToString()
    skeleton = lite.skeleton(data)
    assert skeleton is not None
    walked = any(protos.holds_graph(n) for n in model.graph.node)  # what has_subgraphs looks for, in Python
    scanned = inference._GRAPH_TYPED in data
    typed = inference._graph_typed(data, skeleton)
    assert typed == (scanned and not skeleton.flat)
    assert (typed and walked) == (scanned and walked)  # has_subgraphs: the walk only when the flag says so
    if kind == "flat-lookalike":
        assert scanned and not typed  # the scan would have sent has_subgraphs walking
    assert inference._graph_typed(data, None) == scanned


# -- the first request sent before the checks --------------------------------------------------------------
def _chain_file(tmp_path: Path, name: str, nodes: list[Any] | None = None, **kw: Any) -> Path:
    nodes = nodes or [helper.make_node("Relu", ["x"], ["h"], name="r"), helper.make_node("Neg", ["h"], ["y"], name="n")]
    inputs = [_vi("x", ["batch", 4]), helper.make_tensor_value_info("c", TensorProto.BOOL, [])]
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, [_vi("y")], [_w("w", 300)]),
                              opset_imports=[helper.make_opsetid("", 17)], **kw)
    path = tmp_path / name
    path.write_bytes(model.SerializeToString())
    return path


def _events(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What the load does, in order: ``early`` (the first request sent before the bytes are parsed),
    ``parse``, ``skeleton``, ``start`` (start_shape_inference), ``cancel`` (a request dropped unanswered)."""
    events: list[str] = []

    def spy(name: str, real: Any) -> Any:
        def call(*args: Any, **kw: Any) -> Any:
            events.append(name)
            return real(*args, **kw)
        return call

    monkeypatch.setattr(inference, "send_early", spy("early", inference.send_early))
    monkeypatch.setattr(lite, "skeleton", spy("skeleton", lite.skeleton))
    monkeypatch.setattr(lite, "model_proto", spy("parse", lite.model_proto))
    real_cancel = isolation.Helper.cancel

    def cancel(self: isolation.Helper, request: isolation.Request) -> None:
        if not request.done:  # (a request answered already is not dropped: nothing happens)
            events.append("cancel")
        real_cancel(self, request)

    monkeypatch.setattr(isolation.Helper, "cancel", cancel)
    monkeypatch.setattr(inference, "start_shape_inference", spy("start", inference.start_shape_inference))
    return events


def _general(path: Path, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> Any:
    """The graph of ``path`` without the early request (the request sent after the checks, as before)."""
    with monkeypatch.context() as patch:
        patch.setattr(read, "_send_early", lambda stripped: None)
        return read.load(path, **kw)


@overlap_only
def test_the_first_request_is_sent_before_the_parse_and_answers_as_one_sent_after(tmp_path, monkeypatch):
    path = _chain_file(tmp_path, "m.onnx")
    general = _general(path, monkeypatch)
    events = _events(monkeypatch)
    early = read.load(path)
    assert events[:4] == ["early", "parse", "skeleton", "start"] and "cancel" not in events
    assert graph_fields(early) == graph_fields(general)
    assert early.layer("n").node_shapes == [[("batch", 4)]]  # inferred: the answer was used


@overlap_only
def test_a_hazard_drops_the_early_request_and_retries_as_before(tmp_path, monkeypatch):
    monkeypatch.setattr(inference, "DATA_PROP_ELEMENTS", 4)
    nodes = [helper.make_node("Add", ["x", "w"], ["h"], name="add"), helper.make_node("Neg", ["h"], ["y"], name="n")]
    path = _chain_file(tmp_path, "long.onnx", nodes)
    general = _general(path, monkeypatch)
    events = _events(monkeypatch)
    early = read.load(path)
    assert events[:6] == ["early", "parse", "skeleton", "start", "cancel", "start"]  # the retry without it
    assert graph_fields(early) == graph_fields(general)
    assert "without it" in early.notes[0]


@overlap_only
def test_a_model_the_checks_refuse_drops_the_early_request(tmp_path, monkeypatch):
    leaf = helper.make_graph([helper.make_node("Relu", ["x"], ["t"])], "leaf", [], [_vi("t")])
    inner = helper.make_node("If", ["c"], ["t"], then_branch=leaf, else_branch=leaf)
    branch = helper.make_graph([inner], "b", [], [_vi("t")])
    path = _chain_file(tmp_path, "if.onnx", [helper.make_node("If", ["c"], ["y"], then_branch=branch,
                                                             else_branch=branch)])
    monkeypatch.setenv("INSPECTOR_MAX_ONNX_GRAPH_DEPTH", "1")  # the inner If's branches are one level too deep
    with pytest.raises(LimitExceeded) as general:
        _general(path, monkeypatch)
    events = _events(monkeypatch)
    with pytest.raises(LimitExceeded) as early:
        read.load(path)
    assert str(early.value) == str(general.value)
    assert events == ["early", "parse", "skeleton", "cancel"]
    monkeypatch.delenv("INSPECTOR_MAX_ONNX_GRAPH_DEPTH")
    assert read.load(path).layers  # the helper is free again: the next load is served


@overlap_only
@pytest.mark.parametrize("why", ["dims", "functions", "no-inference"])
def test_no_early_request_where_the_bytes_parsed_are_not_what_is_sent_first(tmp_path, monkeypatch, why):
    if why == "functions":
        body = [helper.make_node("Neg", ["i"], ["o"])]
        function = helper.make_function("my", "F", ["i"], ["o"], body, [helper.make_opsetid("", 17)])
        nodes = [helper.make_node("F", ["x"], ["y"], domain="my")]
        path = _chain_file(tmp_path, "f.onnx", nodes, functions=[function])
        model = lite.model_proto()
        model.ParseFromString(path.read_bytes())
        model.opset_import.add(domain="my", version=1)
        path.write_bytes(model.SerializeToString())
    else:
        path = _chain_file(tmp_path, "m.onnx")
    kw: dict[str, Any] = {"dims": {"batch": 2}} if why == "dims" else {"infer_shapes": why != "no-inference"}
    general = _general(path, monkeypatch, **kw)
    events = _events(monkeypatch)
    graph = read.load(path, **kw)
    assert "early" not in events and "cancel" not in events
    assert graph_fields(graph) == graph_fields(general)


@overlap_only
def test_bytes_that_do_not_parse_drop_the_early_request(tmp_path, monkeypatch):
    path = tmp_path / "bad.onnx"
    path.write_bytes(b"\x08\x08\x3a\x03\x0a\x01\x0f")  # ir_version 8; a graph whose node is not protobuf
    with pytest.raises(ModelLoadError) as general:
        _general(path, monkeypatch)
    events = _events(monkeypatch)
    with pytest.raises(ModelLoadError) as early:
        read.load(path)
    assert str(early.value) == str(general.value) and "not a valid ONNX protobuf" in str(early.value)
    assert events == ["early", "parse", "cancel"]
    assert read.load(_chain_file(tmp_path, "m.onnx")).layers  # the helper is free again


def _fields_models() -> list[Any]:
    plain = helper.make_model(helper.make_graph([], "g", [], []))
    full = lite.model_proto()
    full.ParseFromString(_nested_tensors().SerializeToString())
    full.doc_string, full.model_version = "d", 3
    full.metadata_props.add(key="k", value="v")
    return [plain, full, lite.model_proto()]


@pytest.mark.parametrize("at", range(3))
def test_top_fields_are_the_fields_protobuf_parses(at):
    model = _fields_models()[at]
    data = model.SerializeToString()
    assert wire.top_fields(data) == {fd.number for fd, _ in model.ListFields()}
    assert wire.top_fields(bytearray(data)) == wire.top_fields(data)


@pytest.mark.parametrize("data", [b"\x3a\x05ab", b"\x08", b"\x08\x80", b"\x0b\x0c", b"\x3a" + b"\xff" * 10])
def test_top_fields_of_bytes_that_are_not_well_formed_are_not_told(data):
    assert wire.top_fields(data) is None  # past the end, a varint cut short, a group, an over-long varint


def test_top_fields_tells_no_more_than_its_limit(monkeypatch):
    monkeypatch.setattr(wire, "TOP_FIELDS", 3)
    assert wire.top_fields(b"\x08\x01" * 3) == {1}
    assert wire.top_fields(b"\x08\x01" * 4) is None
