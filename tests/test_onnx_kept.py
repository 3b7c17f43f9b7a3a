"""The inferred model kept by the shape-inference helper (issue 14): when what the helper read of it
(types, names, outline) tells the overlapped build enough, the helper keeps the model and sends it only
when the build needs it (``inference.held``, ``inference._fetch``).  Each fast path is checked against
the general one on small models built here, with cases that must send the model at once, and the
fall-backs when the helper no longer holds it (replaced, killed): the sequential path's result."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
from onnx import TensorProto, helper

from helpers.onnx_graphs import graph_fields
from inspector import isolation
from inspector.loaders import load
from inspector.loaders.onnx import inference, retype

pytestmark = pytest.mark.skipif(not isolation.ISOLATE, reason="the helper keeps models only when isolated")


def _vi(name: str, shape: list | None = None) -> Any:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _model(nodes: list[Any], inputs: list[Any], outputs: list[Any]) -> Any:
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _chain(n: int = 5) -> Any:
    """``x → Relu → … → y``, no value_info: every activation's type comes from inference."""
    names = ["x", *[f"h{i}" for i in range(n - 1)], "y"]
    nodes = [helper.make_node("Relu", [a], [b], name=f"r{i}")
             for i, (a, b) in enumerate(zip(names, names[1:], strict=False))]
    return _model(nodes, [_vi("x", ["batch", 4])], [_vi("y")])


def _repeated() -> Any:
    """Two nodes write one tensor: the overlapped build is done again from the inferred model."""
    nodes = [helper.make_node("Relu", ["x"], ["h"], name="a"), helper.make_node("Neg", ["x"], ["h"], name="b"),
             helper.make_node("Relu", ["h"], ["y"], name="c")]
    return _model(nodes, [_vi("x", [2])], [_vi("y")])


def _save(model: Any, path: Path) -> Path:
    path.write_bytes(model.SerializeToString())
    return path


def _fetches(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Every fetch of a kept model from now on (whether the helper still held it)."""
    got: list[bool] = []
    real = inference._fetch

    def counting(token: bytes, length: int) -> Any:
        answer = real(token, length)
        got.append(answer is not None)
        return answer

    monkeypatch.setattr(inference, "_fetch", counting)
    return got


def _sequential(path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(retype, "OVERLAP", False)
    try:
        return load(path)
    finally:
        monkeypatch.setattr(retype, "OVERLAP", True)


def _kill_helper() -> None:
    os.kill(inference._HELPER.pid, signal.SIGKILL)
    os.waitpid(inference._HELPER.pid, 0)
    inference._HELPER.pid = 0  # as when reaped elsewhere: the next request forks a new helper


# -- kept, and sent only when used ---------------------------------------------------------------------
def test_the_helper_keeps_the_model_when_its_read_tells_enough():
    model = _chain()
    inferred = inference.finish(inference.start_shape_inference(model, data_prop=True, types=True))
    assert inference.held(inferred)
    assert inference.declared_types(inferred)["h2"] == ("float32", ("batch", 4))
    assert inference.unresolved_dims(inferred) is False
    assert inference.outline(inferred) == inference.outline(model)  # fetched and parsed on first use
    assert not inference.held(inferred)
    assert [d.dim_value or d.dim_param for d in inferred.graph.output[0].type.tensor_type.shape.dim] == ["batch", 4]


def test_a_model_not_asked_for_types_or_naming_an_unknown_dim_is_sent_at_once():
    plain = inference.finish(inference.start_shape_inference(_chain(), data_prop=True))
    assert not inference.held(plain) and plain.graph.value_info  # a ModelProto, as before
    nonzero = _model([helper.make_node("NonZero", ["x"], ["y"])], [_vi("x", [3, 4])],
                     [helper.make_tensor_value_info("y", TensorProto.INT64, None)])
    inferred = inference.finish(inference.start_shape_inference(nonzero, data_prop=True, types=True))
    assert inference.unresolved_dims(inferred) is True  # the shape fold will parse it: it came along
    assert isinstance(inferred, inference.Inferred) and not inference.held(inferred)
    assert inferred._data is not None


def test_the_overlapped_build_never_fetches_a_model_it_does_not_need(tmp_path, monkeypatch):
    path = _save(_chain(), tmp_path / "chain.onnx")
    fetches = _fetches(monkeypatch)
    overlapped = load(path)
    assert fetches == []
    assert graph_fields(overlapped) == graph_fields(_sequential(path, monkeypatch))
    assert overlapped.layer("r2").node_shapes == [[("batch", 4)]]


def test_a_build_again_fetches_the_kept_model(tmp_path, monkeypatch):
    path = _save(_repeated(), tmp_path / "t.onnx")
    fetches = _fetches(monkeypatch)
    overlapped = load(path)
    assert fetches == [True]
    assert graph_fields(overlapped) == graph_fields(_sequential(path, monkeypatch))


def test_outlines_that_differ_build_again_from_the_kept_model(tmp_path, monkeypatch):
    path = _save(_chain(), tmp_path / "chain.onnx")
    monkeypatch.setattr(inference, "same_outline", lambda inferred, model: False)
    fetches = _fetches(monkeypatch)
    overlapped = load(path)
    assert fetches == [True]
    assert graph_fields(overlapped) == graph_fields(_sequential(path, monkeypatch))


# -- the helper no longer holds it -----------------------------------------------------------------
def test_a_new_request_drops_the_kept_model_and_a_wrong_token_gets_nothing():
    first = inference.finish(inference.start_shape_inference(_chain(), data_prop=True, types=True))
    assert inference.held(first)
    assert inference._fetch(bytes(inference._TOKEN_BYTES), first._length) is None  # not its token
    second = inference.finish(inference.start_shape_inference(_chain(3), data_prop=True, types=True))
    assert inference.held(second)
    with pytest.raises(RuntimeError, match="no longer holds"):
        first.parsed()  # no builder to infer it again
    assert [n.name for n in second.graph.node] == ["r0", "r1", "r2"]


def _killed_after_the_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    real = inference.finish

    def finish_then_kill(pending: inference.Pending) -> Any:
        outcome = real(pending)
        if inference.held(outcome):
            _kill_helper()
        return outcome

    monkeypatch.setattr(inference, "finish", finish_then_kill)


def test_a_helper_killed_before_the_fetch_falls_back_to_the_sequential_path(tmp_path, monkeypatch):
    path = _save(_repeated(), tmp_path / "t.onnx")
    _killed_after_the_answer(monkeypatch)
    fetches = _fetches(monkeypatch)
    overlapped = load(path)
    assert fetches == [False]
    assert overlapped.metadata["shape_inference"] == "ok"
    assert graph_fields(overlapped) == graph_fields(_sequential(path, monkeypatch))


def test_a_fall_back_whose_inference_fails_is_the_sequential_build_without_it(tmp_path, monkeypatch):
    """Killed before the fetch, and inference fails when run again: the graph, notes and metadata of
    a sequential load whose inference fails."""
    path = _save(_repeated(), tmp_path / "t.onnx")
    _killed_after_the_answer(monkeypatch)
    monkeypatch.setattr(inference, "run_shape_inference", lambda model, *, data_prop: "it ran out of memory")
    overlapped = load(path)
    assert overlapped.metadata["shape_inference"] == "failed: it ran out of memory"
    assert graph_fields(overlapped) == graph_fields(_sequential(path, monkeypatch))


def test_a_kept_model_past_the_growth_limit_is_refused_and_dropped(monkeypatch):
    inference._HELPER.start()  # forked before the patch: the helper keeps its own limit (and the model)
    drops = []
    real_drop = inference._drop
    monkeypatch.setattr(inference, "_drop", lambda: drops.append(1) or real_drop())
    monkeypatch.setattr(inference, "_growth_limit", lambda size: 10)  # the parent's check only
    outcome = inference.finish(inference.start_shape_inference(_chain(), data_prop=True, types=True))
    assert isinstance(outcome, str) and "bytes of shapes for a" in outcome
    assert drops == [1]  # it was kept: dropped
    sent = inference.finish(inference.start_shape_inference(_chain(), data_prop=True))  # not kept
    assert isinstance(sent, str) and "bytes of shapes for a" in sent
    assert drops == [1]


# -- the helper's read, through messages that merge every node and value info ------------------------
def _answers(model: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """What the helper answers of ``model`` (inferred here) read by merging, and read the general way."""
    from inspector.loaders.onnx import lite

    data = model.SerializeToString()
    inferred = lite.infer_shapes_bytes(data, True)
    fast = inference._read_answer(inference._declared_answer(inferred, len(data)))
    monkeypatch.setattr(inference, "read", lambda data, **options: None)
    general = inference._read_answer(inference._declared_answer(inferred, len(data)))
    return fast, general


def _declaring_twice() -> Any:
    """``h`` declared twice in value_info, first without a shape, then with one; ``y`` twice, the
    second without a shape (which then does not replace the first)."""
    model = _chain(3)
    model.graph.value_info.extend([helper.make_tensor_value_info("h0", TensorProto.FLOAT, None),
                                   helper.make_tensor_value_info("h0", TensorProto.FLOAT, ["batch", 4]),
                                   helper.make_tensor_value_info("h1", TensorProto.FLOAT, ["batch", 4]),
                                   helper.make_tensor_value_info("h1", TensorProto.FLOAT, None)])
    return model


def _outlined() -> Any:
    """A chain with every field :func:`inference.outline` reads set: producer, opsets, metadata, stored
    tensors (dense and sparse), a training info, text beyond ASCII, a negative model version."""
    import numpy as np
    from onnx import numpy_helper

    model = _chain()
    model.producer_name, model.producer_version, model.domain = "maker", "1.2 ü", "ai.example"
    model.model_version, model.doc_string, model.graph.name = -3, "about \u4e2d", "graph é"
    model.opset_import.add(domain="ai.onnx.ml", version=3)
    model.metadata_props.add(key="k", value="v")
    model.metadata_props.add(key="k", value="")
    model.graph.initializer.append(numpy_helper.from_array(np.ones(2, np.float32), "w"))
    model.graph.initializer.append(numpy_helper.from_array(np.ones(1, np.int64), "v"))
    values = numpy_helper.from_array(np.ones(1, np.float32), "s")
    indices = numpy_helper.from_array(np.zeros(1, np.int64), "s_i")
    model.graph.sparse_initializer.append(helper.make_sparse_tensor(values, indices, [4]))
    model.training_info.add()
    return model


@pytest.mark.parametrize("make", [_chain, _repeated, _declaring_twice, _outlined])
def test_the_merged_read_tells_the_outline_as_the_general_one(make):
    from inspector.loaders.onnx import lite, mergedread

    data = make().SerializeToString()
    parsed = lite.model_proto()
    parsed.ParseFromString(data)
    merged = mergedread.read(data)
    assert merged is not None and merged.outline == inference.outline(parsed)


def test_the_outline_read_off_the_twins_sees_each_field():
    from inspector.loaders.onnx import mergedread

    base = mergedread.read(_outlined().SerializeToString())
    assert base is not None
    for change in ("producer_name", "producer_version", "domain", "doc_string"):
        model = _outlined()
        setattr(model, change, "other")
        changed = mergedread.read(model.SerializeToString())
        assert changed is not None and changed.outline != base.outline
    assert base.outline[-2:] == [3, 1]  # stored tensors (two dense, one sparse), one training info
    assert base.outline[3] == [["", 17], ["ai.onnx.ml", 3]] and base.outline[5] == -3


@pytest.mark.parametrize("make", [_chain, _repeated, _declaring_twice, _outlined])
def test_the_merged_read_answers_what_the_general_read_does(make, monkeypatch):
    from inspector.loaders.onnx import mergedread

    assert mergedread.read(make().SerializeToString()) is not None  # the fast path is taken
    fast, general = _answers(make(), monkeypatch)
    assert fast is not None and fast == general


def _named(model: Any, where: str) -> Any:
    """``model`` (a chain) with a node output named like a stored tensor, an input, or left out."""
    import numpy as np
    from onnx import numpy_helper

    if where == "initializer":
        model.graph.initializer.append(numpy_helper.from_array(np.ones(1, np.float32), "h1"))
    elif where == "sparse":
        values = numpy_helper.from_array(np.ones(1, np.float32), "h1")
        indices = numpy_helper.from_array(np.zeros(1, np.int64), "h1_i")
        model.graph.sparse_initializer.append(helper.make_sparse_tensor(values, indices, [4]))
    elif where == "input":
        model.graph.input.append(_vi("h1", [2]))
    elif where == "left out":
        model.graph.node.append(helper.make_node("Dropout", ["y"], ["z", ""]))
        model.graph.node.append(helper.make_node("Dropout", ["z"], ["w", ""]))
    elif where == "twice":
        model.graph.node.append(helper.make_node("Neg", ["x"], ["h1"]))
    return model


@pytest.mark.parametrize("where", ["nowhere", "initializer", "sparse", "input", "left out", "twice"])
def test_the_merged_read_tells_names_unique_as_the_general_one(where):
    from inspector.loaders.onnx import lite, mergedread

    data = _named(_chain(), where).SerializeToString()
    parsed = lite.model_proto()
    parsed.ParseFromString(data)
    merged = mergedread.read(data)
    assert merged is not None
    assert merged.unique is inference.names_unique(parsed.graph) is (where in ("nowhere", "left out"))


def test_a_value_info_without_a_type_or_a_name_takes_the_general_read():
    from onnx import ValueInfoProto

    from inspector.loaders.onnx import mergedread

    for broken in (ValueInfoProto(name="h1"), ValueInfoProto(type=_vi("h1", [2]).type)):
        model = _chain()
        model.graph.value_info.append(broken)
        assert mergedread.read(model.SerializeToString()) is None
    assert mergedread.read(b"\xff\xff") is None  # not a model


def test_without_the_twins_the_general_read_is_taken(monkeypatch):
    from inspector.loaders.onnx import mergedread

    monkeypatch.setattr(mergedread, "_twins", lambda: None)
    assert mergedread.read(_chain().SerializeToString()) is None


def _tokens(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bytes, int]]:
    """The token and length of every model the helper kept from now on."""
    kept: list[tuple[bytes, int]] = []
    real = inference.finish

    def noting(pending: inference.Pending) -> Any:
        outcome = real(pending)
        if inference.held(outcome):
            kept.append((outcome._token, outcome._length))
        return outcome

    monkeypatch.setattr(inference, "finish", noting)
    return kept


def test_the_helper_drops_the_kept_model_when_the_build_is_done(tmp_path, monkeypatch):
    path = _save(_chain(), tmp_path / "chain.onnx")
    kept = _tokens(monkeypatch)
    load(path)
    assert len(kept) == 1 and inference._fetch(*kept[0]) is None
    monkeypatch.setattr(inference, "release", lambda inferred: None)  # not dropped: still there
    load(path)
    assert len(kept) == 2 and inference._fetch(*kept[1]) is not None


def test_a_released_model_used_again_is_inferred_again():
    model = _chain()
    inferred = inference.finish(inference.start_shape_inference(model, data_prop=True, types=True))
    inference.release(inferred)
    assert not inference.held(inferred)
    again = []
    inferred.again = lambda: again.append(1) or inference.run_shape_inference(model, data_prop=True)
    assert inferred.graph.value_info and again == [1]


def test_no_helper_is_forked_to_drop_or_fetch_what_an_ended_one_held():
    inferred = inference.finish(inference.start_shape_inference(_chain(), data_prop=True, types=True))
    assert inference._HELPER.running()
    _kill_helper()
    assert not inference._HELPER.running()
    assert inference._fetch(inferred._token, inferred._length) is None
    inference.release(inferred)
    assert not inference.held(inferred) and inference._HELPER.pid == 0  # nothing forked


def test_the_merged_read_answers_without_parsing_the_whole_model(monkeypatch):
    """The twins tell the types, names and outline: the inferred model is parsed whole only without them."""
    from inspector.loaders.onnx import lite

    data = _outlined().SerializeToString()
    inferred = lite.infer_shapes_bytes(data, True)
    general = inference._read_answer(inference._general_answer(inferred))

    def refused(inferred: bytes) -> bytes:
        raise AssertionError("parsed whole")

    monkeypatch.setattr(inference, "_general_answer", refused)
    fast = inference._read_answer(inference._declared_answer(inferred, len(data)))
    assert fast is not None and fast == general


def test_what_the_answer_was_made_of_is_held_for_later_without_changing_it():
    """The helper frees the twins and lists its answer was read from only once the answer is written."""
    from inspector.loaders.onnx import lite

    data = _outlined().SerializeToString()
    inferred = lite.infer_shapes_bytes(data, True)
    held: list[Any] = []
    answer = inference._declared_answer(inferred, len(data), hold=held.append)
    assert answer == inference._declared_answer(inferred, len(data)) and answer
    assert held  # given to the caller, not freed before the answer was made
