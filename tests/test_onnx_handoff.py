"""The hand-off between the ONNX file, the shape-inference helper and the overlapped build, made
cheaper for graphs of many nodes (issue 14): each fast path is checked against the general one on
small models built here, with a case that must take the general path.

* the inferred model is kept as bytes and parsed only when the build needs it (``inference.Inferred``);
  the helper tells whether its node outputs are named once and the outline the metadata reads;
* ``wire.strip_file`` reads the common field (a one-byte key, a length of one or two bytes) inline;
* one parse of the stripped bytes with a ``proto3`` twin of onnx's schema tells that no text can reach
  the graph as bytes, so the graph is not scanned for it;
* the overlapped build serializes the model once and takes its length for ``ByteSize``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from helpers.onnx_graphs import graph_fields
from inspector import isolation
from inspector.errors import LimitExceeded
from inspector.loaders import load
from inspector.loaders.onnx import builder, inference, lite, read, retype, wire

overlap_only = pytest.mark.skipif(not isolation.ISOLATE, reason="the build overlaps only an isolated helper")


def _vi(name: str, shape: list | None = None) -> Any:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _model(nodes: list[Any], inputs: list[Any], outputs: list[Any], inits: list[Any] = (), **kw: Any) -> Any:
    graph = helper.make_graph(nodes, kw.pop("name", "g"), inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], **kw)
    model.ir_version = 8
    return model


def _chain(n: int = 6) -> Any:
    """``x → Relu → … → y`` with no value_info: every activation's type comes from inference."""
    names = ["x", *[f"h{i}" for i in range(n - 1)], "y"]
    nodes = [helper.make_node("Relu", [a], [b], name=f"r{i}")
             for i, (a, b) in enumerate(zip(names, names[1:], strict=False))]
    return _model(nodes, [_vi("x", ["batch", 4])], [_vi("y")], [])


def _save(model: Any, path: Path) -> Path:
    path.write_bytes(model.SerializeToString())
    return path


def _loads(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any, int]:
    """The overlapped and the sequential graph of ``path``, and how often the overlapped load parsed
    the inferred model in this process."""
    parses = []
    real = inference.Inferred.parsed

    def counting(self: inference.Inferred) -> Any:
        parses.append(self._model is None)
        return real(self)

    monkeypatch.setattr(inference.Inferred, "parsed", counting)
    overlapped = load(path)
    monkeypatch.setattr(retype, "OVERLAP", False)
    sequential = load(path)
    monkeypatch.setattr(retype, "OVERLAP", True)
    return overlapped, sequential, sum(parses)


# -- the inferred model, parsed only when needed ----------------------------------------------------
@overlap_only
def test_the_overlapped_build_does_not_parse_the_inferred_model_when_the_helper_told_enough(tmp_path, monkeypatch):
    overlapped, sequential, parses = _loads(_save(_chain(), tmp_path / "chain.onnx"), monkeypatch)
    assert graph_fields(overlapped) == graph_fields(sequential)
    assert parses == 0
    assert overlapped.layer("r3").node_shapes == [[("batch", 4)]]


@overlap_only
def test_a_build_again_from_the_inferred_model_parses_it(tmp_path, monkeypatch):
    """Two nodes write one tensor: the helper says so, and the graph is built from the parsed model."""
    nodes = [helper.make_node("Relu", ["x"], ["h"], name="a"), helper.make_node("Neg", ["x"], ["h"], name="b"),
             helper.make_node("Relu", ["h"], ["y"], name="c")]
    overlapped, sequential, parses = _loads(_save(_model(nodes, [_vi("x", [2])], [_vi("y")]), tmp_path / "t.onnx"),
                                            monkeypatch)
    assert graph_fields(overlapped) == graph_fields(sequential)
    assert parses == 1


@overlap_only
def test_metadata_comes_from_the_inferred_model_when_the_outlines_differ(tmp_path, monkeypatch):
    """An outline the parent's model does not share (here: forced) makes the metadata read the inferred
    model, as before — the same metadata, since inference changes none of it."""
    monkeypatch.setattr(inference, "same_outline", lambda inferred, model: False)
    overlapped, sequential, parses = _loads(_save(_chain(), tmp_path / "chain.onnx"), monkeypatch)
    assert graph_fields(overlapped) == graph_fields(sequential)
    assert parses == 1


@overlap_only
def test_the_helper_tells_names_unique_and_the_outline_as_the_parent_would(tmp_path):
    model = _chain()
    model.producer_name, model.doc_string = "maker", "about"
    model.metadata_props.add(key="k", value="v")
    inferred = inference.finish(inference.start_shape_inference(model, data_prop=True, types=True))
    assert isinstance(inferred, inference.Inferred) and inferred._model is None
    assert inference.helper_names_unique(inferred) is True
    assert inference.same_outline(inferred, model)
    assert inferred._model is None  # nothing above parsed it
    assert inference.outline(inferred) == inference.outline(model)  # parses it: the same outline
    assert inference.names_unique(inferred.graph) is True
    changed = _chain()
    changed.producer_name = "other"
    assert not inference.same_outline(inferred, changed)
    assert not inference.same_outline(model, model)  # not a model the helper answered
    assert inference.helper_names_unique(model) is None


@overlap_only
def test_the_helper_tells_a_repeated_name():
    nodes = [helper.make_node("Relu", ["x"], ["h"]), helper.make_node("Neg", ["x"], ["h"]),
             helper.make_node("Relu", ["h"], ["y"])]
    model = _model(nodes, [_vi("x", [2])], [_vi("y")])
    inferred = inference.finish(inference.start_shape_inference(model, data_prop=True, types=True))
    assert inference.helper_names_unique(inferred) is False
    assert inference.names_unique(inference.parsed(inferred).graph) is False


_FLOAT2N = ["float32", [2, "n"]]


def _raw(meta: list[Any], blob: bytes, count: int, index: bytes) -> bytes:
    """A types part laid out as ``inference._encode_answer`` lays it out, from its parts as given."""
    import json

    encoded = json.dumps(meta, separators=(",", ":")).encode()
    return inference._TYPES_HEAD.pack(len(encoded), len(blob), count) + encoded + blob + index


@pytest.mark.parametrize("raw", [
    b"", b"[1, 2]", b"\xff", b"[[], [], [], true, []]",  # not laid out as the helper lays it out (JSON, once)
    _raw([[_FLOAT2N], True, [], True, "B"], b"a\0b", 2, b"\0"),  # an index missing
    _raw([[_FLOAT2N], True, [], True, "B"], b"a\0b", 2, b"\0\1"),  # an index past the types
    _raw([[_FLOAT2N], True, [], True, "B"], b"a\0b", 3, b"\0\0\0"),  # fewer names than told
    _raw([[_FLOAT2N], True, [], True, "B"], b"a\0b", 2, b"\0\0")[:-3],  # cut short
    _raw([[_FLOAT2N], True, [], True, "Q?"], b"a\0b", 2, b"\0\0"),  # no array type code
    _raw([[_FLOAT2N], True, [], True, "H"], b"a\0b", 2, b"\0\0\0"),  # not whole items
    _raw([[_FLOAT2N], 1, [], True, "B"], b"a\0b", 2, b"\0\0"),  # unique not a bool
    _raw([[_FLOAT2N], True, 3, True, "B"], b"a\0b", 2, b"\0\0"),  # outline not a list
    _raw([[_FLOAT2N], True, [], False, "B"], b'{"a": 1}', 1, b"\0"),  # names (JSON) not a list
    _raw([[_FLOAT2N], True, [], True, "B"], b"a\xff", 1, b"\0"),  # names not UTF-8
    _raw([[_FLOAT2N], True, []], b"a", 1, b"\0"),  # the JSON part short
])
def test_an_answer_not_as_the_helper_writes_it_is_read_by_the_parent(raw):
    assert inference._read_answer(raw) is None


def test_an_answer_as_the_helper_writes_it_is_read():
    raw = inference._encode_answer(["a", "b"], [0, 0], [_FLOAT2N], unique=True, outline=["p"])
    read_back = inference._read_answer(raw)
    assert read_back is not None and read_back.unique and read_back.outline == ["p"]
    assert read_back.types == {"a": ("float32", (2, "n")), "b": ("float32", (2, "n"))}
    assert inference._read_answer(bytearray(raw)) == read_back  # the helper's answer arrives as a bytearray,
    assert inference._read_answer(memoryview(bytearray(raw))) == read_back  # read through a view of it
    assert raw == _raw([[_FLOAT2N], True, ["p"], True, "B"], b"a\0b", 2, b"\0\0")


@pytest.mark.parametrize("names", [
    [], [""], ["a"], ["", ""], ["a", ""], ["x\0y", "z"], ["\0"], ["é", "ß\u4e2d", "\U0001f600"], ["\udcff", "a"],
    [f"t{i}" for i in range(300)],
])
def test_names_as_the_helper_writes_them_are_read_back_the_same(names):
    """Names joined by NUL, or a JSON list when one holds a NUL; any text, lone surrogates (a name onnx
    could not decode) too; more than 256 types (indices of two bytes)."""
    infos = [["float32", [i]] for i in range(len(names))]
    read_back = inference._read_answer(inference._encode_answer(names, list(range(len(names))), infos,
                                                                unique=False, outline=[]))
    assert read_back is not None and read_back.unique is False
    assert read_back.types == {name: ("float32", (i,)) for i, name in enumerate(names)}


def test_a_name_declared_again_is_read_as_base_types_reads_it():
    """A later entry replaces an earlier one only when it knows a shape (``protos.base_types``)."""
    from inspector.loaders.onnx import protos

    infos = [["float32", None], ["float32", [2]], ["int64", [3]], ["int64", None]]
    names, index = ["h", "h", "y", "y", "h"], [0, 1, 2, 3, 0]
    read_back = inference._read_answer(inference._encode_answer(names, index, infos, unique=True, outline=[]))
    declared = [_vi(name) for name in names]  # the same sequence as value infos: base_types' answer
    for vi, i in zip(declared, index, strict=True):
        dtype, shape = infos[i]
        vi.type.tensor_type.elem_type = TensorProto.FLOAT if dtype == "float32" else TensorProto.INT64
        if shape is not None:
            vi.type.tensor_type.shape.SetInParent()
            for d in shape:
                vi.type.tensor_type.shape.dim.add(dim_value=d)
    assert read_back is not None and read_back.types == protos.base_types(declared)
    assert read_back.types == {"h": ("float32", (2,)), "y": ("int64", (3,))}


def test_parsed_is_the_model_itself_for_a_model():
    model = _chain()
    assert inference.parsed(model) is model


# -- the common wire field, read inline ------------------------------------------------------------
def _wide(sizes: list[int]) -> Any:
    """Nodes of about the given encoded sizes (their names make them long): lengths of one, two and
    three bytes, nodes small (copied) and large (walked)."""
    nodes, prev = [], "x"
    for i, size in enumerate(sizes):
        nodes.append(helper.make_node("Relu", [prev], [f"t{i}"], name="n" * size))
        prev = f"t{i}"
    big = numpy_helper.from_array(np.ones((300,), np.float32), "w")
    nodes.append(helper.make_node("Add", [prev, "w"], ["y"]))
    return _model(nodes, [_vi("x", [300])], [_vi("y")], [big])


@pytest.mark.parametrize("window", [wire.WINDOW, 64, 17])
def test_strip_file_reads_lengths_of_every_size_across_window_edges(tmp_path, monkeypatch, window):
    monkeypatch.setattr(wire, "WINDOW", window)
    model = _wide([1, 100, 126, 127, 128, 300, 1000, 1100, 16_383, 16_384, 20_000, 5])
    path = _save(model, tmp_path / "wide.onnx")
    stripped = wire.strip_file(path, max_nodes=100)
    parsed = lite.model_proto()
    parsed.ParseFromString(stripped.data)
    assert [n.name for n in parsed.graph.node] == [n.name for n in model.graph.node]
    [w] = parsed.graph.initializer
    assert not w.raw_data and w.data_location == 1 and w.external_data[0].value.startswith(stripped.token_prefix)
    del model.graph.initializer[:]
    del parsed.graph.initializer[:]
    assert parsed == model  # every other field as it was
    no_tensor = _save(model, tmp_path / "plain.onnx")
    assert wire.strip_file(no_tensor, max_nodes=100).data == no_tensor.read_bytes()


def test_strip_file_counts_nodes_on_the_inline_path_too(tmp_path):
    path = _save(_wide([1, 2, 300, 5000]), tmp_path / "four.onnx")  # five nodes, small and large
    assert wire.strip_file(path, max_nodes=5).data
    with pytest.raises(LimitExceeded, match="more than 4 nodes"):
        wire.strip_file(path, max_nodes=4)


def test_strip_file_refuses_field_zero_and_a_length_past_the_end(tmp_path):
    path = tmp_path / "bad.onnx"
    path.write_bytes(b"\x02\x01x")  # field 0, wire type 2: a one-byte key the inline path must not take
    with pytest.raises(wire.WireError, match="field number 0"):
        wire.strip_file(path)
    path.write_bytes(b"\x3a\x85\x01" + b"\x00" * 10)  # graph, length 133: past the end of the file
    with pytest.raises(wire.WireError, match="truncated"):
        wire.strip_file(path)


# -- text as bytes, ruled out by one parse ------------------------------------------------------------
def _with_bad_text(where: str) -> bytes:
    nodes = [helper.make_node("Relu", ["x"], ["h"], name="AB"),
             helper.make_node("Cast", ["h"], ["y"], name="c", to=TensorProto.FLOAT),
             helper.make_node("Constant", [], ["k"], name="k", value_string="v")]
    nodes[1].attribute[0].doc_string = "QQ"  # a string field of an attribute (its value ``s`` is bytes)
    model = _model(nodes, [_vi("x", ["NN", 4])], [_vi("y"), helper.make_tensor_value_info("k", TensorProto.STRING, [])])
    model.doc_string = "DD"
    data = model.SerializeToString()
    return data.replace({"name": b"AB", "attribute": b"QQ", "doc": b"DD", "dim": b"NN"}.get(where, b"@@"), b"\xff\xfe")


@pytest.mark.parametrize("where", ["nowhere", "name", "attribute", "doc", "dim"])
def test_all_text_utf8_tells_a_string_that_is_not(where):
    assert lite.all_text_utf8(_with_bad_text(where)) is (where == "nowhere")


@pytest.mark.parametrize("where", ["nowhere", "name", "attribute", "doc", "dim"])
def test_the_graph_is_the_one_the_scan_alone_gives(tmp_path, monkeypatch, where):
    """The parse says every string is text: the graph is not scanned; otherwise it is, as before —
    and the graph is the same as when the scan alone decides."""
    path = tmp_path / "m.onnx"
    path.write_bytes(_with_bad_text(where))
    scans = []
    real = read._graph_has_bytes
    monkeypatch.setattr(read, "_graph_has_bytes", lambda graph: scans.append(1) or real(graph))
    fast = load(path)
    assert bool(scans) is (where != "nowhere")
    monkeypatch.setattr(lite, "all_text_utf8", lambda data: False)
    monkeypatch.setattr(inference, "text_utf8", lambda inferred: None)  # nor what the helper checked
    scans.clear()
    general = load(path)
    assert scans
    assert graph_fields(fast) == graph_fields(general)


@overlap_only
def test_the_helper_checks_the_text_of_the_bytes_it_was_sent(tmp_path, monkeypatch):
    """An overlapped build sends the parsed bytes as they are: the helper checks their text (where the time is
    to spare) and the parent does not, and the graph is the one the parent's own check gives."""
    path = tmp_path / "m.onnx"
    path.write_bytes(_with_bad_text("nowhere"))
    checked: list[int] = []
    told: list[bool | None] = []
    real_check, real_told = lite.all_text_utf8, inference.text_utf8
    monkeypatch.setattr(lite, "all_text_utf8", lambda data: checked.append(1) or real_check(data))
    monkeypatch.setattr(inference, "text_utf8", lambda inferred: told.append(real_told(inferred)) or told[-1])
    fast = load(path)
    assert told == [True] and checked == []  # (the helper's own calls are in its own process)
    monkeypatch.setattr(inference, "text_utf8", lambda inferred: None)  # not told: checked here, as before
    general = load(path)
    assert checked == [1]
    assert graph_fields(fast) == graph_fields(general)


def test_without_the_twin_every_graph_is_scanned(monkeypatch):
    monkeypatch.setattr(lite, "_utf8_twin", lambda: None)
    assert lite.all_text_utf8(_with_bad_text("nowhere")) is False


# -- the model serialized once ------------------------------------------------------------------------
@overlap_only
def test_the_overlapped_build_takes_the_serialized_length_for_byte_size(tmp_path, monkeypatch):
    sizes: list[int | None] = []
    real = builder.Builder._too_big

    def spy(self: builder.Builder, model: Any, size: int | None = None) -> bool:
        sizes.append(size)
        if size is not None:
            assert size == model.ByteSize()
        return real(self, model, size)

    monkeypatch.setattr(builder.Builder, "_too_big", spy)
    path = _save(_chain(), tmp_path / "chain.onnx")
    overlapped = load(path)
    assert sizes and sizes[0] is not None
    # a file larger than 1/16 of the limit: ByteSize, as before (here the limit makes it too big)
    sizes.clear()
    monkeypatch.setattr(builder, "PROTOBUF_MAX_BYTES", path.stat().st_size * 16 - 1)
    skipped = load(path)
    assert sizes == [None]
    assert skipped.metadata["shape_inference"].startswith("skipped")
    assert overlapped.metadata["shape_inference"] == "ok"
