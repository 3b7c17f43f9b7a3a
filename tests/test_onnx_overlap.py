"""Shape inference overlapped with the build (``loaders/onnx/retype.py``): the graph built while the
helper infers, then given the inferred types (or built again), is the sequential build's graph.

Every case loads one small model twice — overlapped, and with ``retype.OVERLAP = False`` (inference
first, then the build, as before) — compares every field of the two graphs, and checks which branch
the overlapped load took (how many times the builder built the graph)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from helpers.onnx_graphs import graph_fields, hazard_model
from inspector import isolation
from inspector.ir import ModelGraph
from inspector.loaders import load
from inspector.loaders.onnx import builder, inference, protos, retype
from inspector.loaders.onnx.scope import Const

pytestmark = pytest.mark.skipif(not isolation.ISOLATE, reason="the build overlaps only an isolated helper")


def _model(nodes, inputs, outputs, initializers=(), **kw) -> Any:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers), value_info=kw.pop("value_info", None))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], **kw)
    model.ir_version = 8
    return model


def _save(model: Any, path: Path) -> Path:
    path.write_bytes(model.SerializeToString())
    return path


def _vi(name: str, shape: list | None = None, dtype: int = TensorProto.FLOAT) -> Any:
    return helper.make_tensor_value_info(name, dtype, shape)


def _w(name: str, *shape: int) -> Any:
    return numpy_helper.from_array(np.ones(shape, np.float32), name)


def _both(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[ModelGraph, int]:
    """The overlapped graph (checked equal to the sequential one) and how many graphs it built."""
    builds = []
    real = builder.Builder._construct

    def counting(self: builder.Builder, model: Any) -> Any:
        builds.append(1)
        return real(self, model)

    monkeypatch.setattr(builder.Builder, "_construct", counting)
    overlapped = load(path)
    count = len(builds)
    monkeypatch.setattr(retype, "OVERLAP", False)
    sequential = load(path)
    monkeypatch.setattr(retype, "OVERLAP", True)
    assert graph_fields(overlapped) == graph_fields(sequential)
    return overlapped, count


def _plain(tmp_path: Path) -> Path:
    """No value_info: every activation's shape comes from inference; a small Transpose of a weight folds
    (its value computed) and a large one folds to a propagated shape."""
    nodes = [helper.make_node("Transpose", ["w"], ["wt"], perm=[1, 0]),
             helper.make_node("Transpose", ["big"], ["bigt"], perm=[1, 0]),
             helper.make_node("MatMul", ["x", "wt"], ["h"], name="mm"),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("MatMul", ["r", "bigt"], ["y"], name="mm2")]
    model = _model(nodes, [_vi("x", ["batch", 4])], [_vi("y")], [_w("w", 8, 4), _w("big", 5000, 8)])
    return _save(model, tmp_path / "plain.onnx")


def test_plain_overlap_gives_the_inferred_types_without_a_second_build(tmp_path, monkeypatch):
    graph, builds = _both(_plain(tmp_path), monkeypatch)
    assert builds == 1  # built once, from the file's types, then given the inferred ones
    assert graph.layer("relu").node_shapes == [[("batch", 8)]] and graph.layer("relu").dtype == "float32"
    [x, _w_] = graph.layer("mm").operands
    assert (x.kind, x.shape, x.dtype) == ("input", ("batch", 4), "float32")
    assert graph.layer("mm2").node_shapes == [[("batch", 5000)]]
    assert graph.metadata["outputs"] == [{"name": "y", "dtype": "float32", "shape": ["batch", 5000]}]
    assert graph.metadata["shape_inference"] == "ok"


def test_a_fold_whose_shape_came_from_inference_is_built_again(tmp_path, monkeypatch):
    """An Add of two large weights has no computed value and no propagated shape: its shape is the
    inferred type's, which the file did not declare — the graph is built again from the inferred model."""
    nodes = [helper.make_node("Add", ["a", "b"], ["ab"]),
             helper.make_node("MatMul", ["x", "ab"], ["y"], name="mm")]
    model = _model(nodes, [_vi("x", [2, 6000])], [_vi("y")], [_w("a", 6000, 4), _w("b", 6000, 4)])
    graph, builds = _both(_save(model, tmp_path / "concat.onnx"), monkeypatch)
    assert builds == 2
    assert graph.layer("mm").operands[1].shape == (6000, 4) and graph.metadata["shape_inference"] == "ok"


def test_a_fold_that_used_a_declared_type_inference_keeps_is_not_built_again(tmp_path, monkeypatch):
    """The same Concat, its type declared in the file: inference agrees, so one build serves."""
    nodes = [helper.make_node("Concat", ["a", "b"], ["ab"], axis=0),
             helper.make_node("MatMul", ["x", "ab"], ["y"], name="mm")]
    model = _model(nodes, [_vi("x", [2, 6000])], [_vi("y")], [_w("a", 3000, 4), _w("b", 3000, 4)],
                   value_info=[_vi("ab", [6000, 4])])
    graph, builds = _both(_save(model, tmp_path / "declared.onnx"), monkeypatch)
    assert builds == 1
    assert graph.layer("mm").operands[1].shape == (6000, 4) and graph.metadata["shape_inference"] == "ok"


def test_failed_inference_keeps_the_speculative_graph(tmp_path, monkeypatch):
    def failing(pending: inference.Pending) -> str:
        inference.cancel(pending)
        return "it ran out of memory"

    monkeypatch.setattr(inference, "finish", failing)
    graph, builds = _both(_plain(tmp_path), monkeypatch)
    assert builds == 1
    assert graph.metadata["shape_inference"] == "failed: it ran out of memory"
    assert graph.notes[0].startswith("Shape inference failed (it ran out of memory)")
    assert graph.layer("relu").node_shapes == [[None]]  # the file's own (absent) types


def test_the_retry_without_data_propagation_overlaps_too(tmp_path, monkeypatch):
    """A 1-D tensor longer than DATA_PROP_ELEMENTS reaching an Add: data propagation is not run, the run
    without it starts at once; notes and metadata say so, as before."""
    monkeypatch.setattr(inference, "DATA_PROP_ELEMENTS", 4)
    nodes = [helper.make_node("Add", ["x", "c"], ["y"], name="add"), helper.make_node("Relu", ["y"], ["z"])]
    model = _model(nodes, [_vi("x", [8])], [_vi("z")], [_w("c", 8)])
    graph, builds = _both(_save(model, tmp_path / "long.onnx"), monkeypatch)
    assert builds == 1
    assert graph.metadata["shape_inference"] == "ok (without data propagation)"
    assert "shapes were inferred without it" in graph.notes[0]
    assert graph.layer("add").node_shapes == [[(8,)]]


def test_a_model_with_a_subgraph_is_built_after_inference(tmp_path, monkeypatch):
    then = helper.make_graph([helper.make_node("Relu", ["x"], ["t"])], "then", [], [_vi("t")])
    other = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [], [_vi("e")])
    nodes = [helper.make_node("If", ["cond"], ["y"], name="if", then_branch=then, else_branch=other)]
    model = _model(nodes, [_vi("cond", [], TensorProto.BOOL), _vi("x", [3])], [_vi("y")])
    path = _save(model, tmp_path / "if.onnx")
    assert retype.has_subgraphs(model, inference.Pending(request=None))
    graph, builds = _both(path, monkeypatch)
    assert builds == 1 and graph.layer("if").subgraphs


def test_a_model_with_functions_is_built_after_inference(tmp_path, monkeypatch):
    body = helper.make_function("local", "Twice", ["a"], ["b"], [helper.make_node("Relu", ["a"], ["b"])],
                                [helper.make_opsetid("", 17)])
    nodes = [helper.make_node("Twice", ["x"], ["y"], domain="local", name="call")]
    graph = helper.make_graph(nodes, "g", [_vi("x", [2, 3])], [_vi("y")])
    model = helper.make_model(graph, functions=[body],
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local", 1)])
    model.ir_version = 8
    assert not retype.may_overlap(model)
    graph_out, builds = _both(_save(model, tmp_path / "fn.onnx"), monkeypatch)
    assert builds == 1 and graph_out.layer("call").node_shapes == [[(2, 3)]]


def test_a_repeated_tensor_name_is_built_again(tmp_path, monkeypatch):
    """Two nodes write one tensor name: a layer could not be told from another, so no retyping."""
    nodes = [helper.make_node("Relu", ["x"], ["h"], name="a"), helper.make_node("Neg", ["x"], ["h"], name="b"),
             helper.make_node("Relu", ["h"], ["y"], name="c")]
    model = _model(nodes, [_vi("x", [2])], [_vi("y")])
    _, builds = _both(_save(model, tmp_path / "twice.onnx"), monkeypatch)
    assert builds == 2


def test_same_fold_tells_a_changed_type_that_matters():
    valued = Const("c", "float32", (2,), ())
    valued.value = np.zeros(2, np.float32)
    assert retype._same_fold((None, None), ("float32", (2,)), valued)  # the value's dtype either way
    assert not retype._same_fold((None, None), ("float16", (2,)), valued)
    propagated = Const("c", "float32", (3, 4), ())
    assert retype._same_fold((None, None), ("float32", (3, 4)), propagated)
    assert not retype._same_fold((None, None), ("float32", (4, 3)), propagated)
    unknown = Const("c", "float32", None, ())
    assert not retype._same_fold((None, None), ("float32", (3, 4)), unknown)
    assert retype._same_fold((None, None), ("float32", None), unknown)
    typed = Const("c", "float32", (3, 4), ())  # took the static type the file declared
    assert not retype._same_fold(("float32", (3, 4)), ("float32", ("n", 4)), typed)


def test_helper_send_then_receive_and_cancel():
    helper_process = isolation.Helper(lambda: (lambda data, flag: data[::-1] * (flag + 1)))
    request = helper_process.send(b"abc", flag=1, seconds=10, memory=1 << 28)
    assert helper_process.receive(request) == b"cbacba"
    dropped = helper_process.send(b"xyz", flag=0, seconds=10, memory=1 << 28)
    helper_process.cancel(dropped)  # the helper is stopped; the next request forks a new one
    assert helper_process.call(b"12", flag=0, seconds=10, memory=1 << 28) == b"21"
    with pytest.raises(RuntimeError, match="already read"):
        helper_process.receive(request)
    helper_process._stop(kill=True)


def test_a_graph_in_an_attribute_typed_graphs_is_found_in_the_built_graph(tmp_path, monkeypatch):
    """Bytes without an attribute typed GRAPH skip the look at every attribute; a body in a GRAPHS attribute
    (a custom op) still sends the load down the sequential path, after the speculative build."""
    body = helper.make_graph([helper.make_node("Relu", ["x"], ["t"])], "body", [], [_vi("t")])
    custom = helper.make_node("Custom", ["x"], ["y"], name="custom", domain="my.ops")
    custom.attribute.append(helper.make_attribute("bodies", [body]))
    model = _model([custom, helper.make_node("Relu", ["y"], ["z"])], [_vi("x", [3])], [_vi("z")])
    model.opset_import.append(helper.make_opsetid("my.ops", 1))
    graph, builds = _both(_save(model, tmp_path / "graphs.onnx"), monkeypatch)
    assert builds == 2 and graph.layer("custom").subgraphs


def test_retyped_operands_keep_every_field():
    """``retype.apply`` makes an ``input`` operand anew from its fields: a new field must be carried too."""
    from dataclasses import fields

    from inspector.ir import Operand

    assert [f.name for f in fields(Operand)] == ["name", "tensor", "kind", "dtype", "shape", "value"]


def _hazard_reference(graph: Any, limit: int) -> str:
    """The hazard check as it was: every propagating node's operands looked up."""
    lengths: dict[str, int] = {}
    for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
        dims = vi.type.tensor_type.shape.dim
        if len(dims) == 1 and dims[0].HasField("dim_value"):
            lengths[vi.name] = int(dims[0].dim_value)
    for t in graph.initializer:
        if len(t.dims) == 1:
            lengths[t.name] = int(t.dims[0])
    for node in graph.node:
        if node.op_type == "Constant" and node.output:
            for a in node.attribute:
                if a.name == "value" and len(a.t.dims) == 1:
                    lengths[node.output[0]] = int(a.t.dims[0])
        elif node.op_type == "Concat" and node.output:
            lengths[node.output[0]] = sum(lengths.get(i, 0) for i in node.input)
        if node.op_type in inference._PROPAGATING:
            longest = max([lengths.get(i, 0) for i in node.input] + [lengths.get(o, 0) for o in node.output])
            if longest > limit:
                return f"{longest:,} {node.op_type} {node.name}"
    return ""


@pytest.mark.parametrize("case", ["concat", "declared", "overwritten", "unreached", "short"])
def test_the_hazard_check_passes_by_nodes_but_finds_what_it_found(case, monkeypatch):
    monkeypatch.setattr(inference, "DATA_PROP_ELEMENTS", 10)
    model = hazard_model(case, [12])
    found = inference.data_prop_hazard(model.graph)
    expected = _hazard_reference(model.graph, 10)
    assert bool(found) == bool(expected) == (case in ("concat", "declared"))
    if expected:
        length, op, name = expected.split()
        assert found.startswith(f"a 1-D tensor of {length} elements reaches {op} {name!r}")


def test_the_helper_reads_the_declared_types_the_builder_would(tmp_path):
    import onnx

    model = onnx.load(_plain(tmp_path))
    inferred = inference.finish(inference.start_shape_inference(model, data_prop=True, types=True))
    read_by_helper = inference.declared_types(inferred)
    assert read_by_helper is not None and read_by_helper["r"] == ("float32", ("batch", 8))
    assert read_by_helper == protos.base_types(protos.declared(inferred.graph))
    inference.forget_types(inferred)
    assert inference.declared_types(inferred) is None
    plain = inference.finish(inference.start_shape_inference(model, data_prop=True))  # not asked for
    assert inference.declared_types(plain) is None and plain.graph.value_info
    assert inference._read_answer(b"[1, 2]") is None and inference._read_answer(b"") is None


def test_a_build_that_would_be_redone_is_abandoned_early(tmp_path, monkeypatch):
    """Two sums of large weights, neither shape declared: the second fold finds the first one's constant
    shapeless, so the speculative build stops there and the graph is built after inference, as before."""
    nodes = [helper.make_node("Add", ["a", "b"], ["ab"]),
             helper.make_node("Sub", ["b", "a"], ["ba"]),
             helper.make_node("MatMul", ["x", "ab"], ["h"], name="mm"),
             helper.make_node("MatMul", ["x", "ba"], ["h2"]),
             helper.make_node("Add", ["h", "h2"], ["y"])]
    model = _model(nodes, [_vi("x", [2, 6000])], [_vi("y")], [_w("a", 6000, 4), _w("b", 6000, 4)])
    retyped = []
    monkeypatch.setattr(retype, "inferred_types", lambda *a: retyped.append(1))
    graph, builds = _both(_save(model, tmp_path / "two.onnx"), monkeypatch)
    assert builds == 2 and not retyped  # the speculative build never got as far as retyping
    assert graph.layer("mm").operands[1].shape == (6000, 4) and graph.metadata["shape_inference"] == "ok"


def test_check_use_stops_only_on_a_shape_inference_would_give():
    shapeless = Const("ab", "float32", None, ())
    with pytest.raises(retype.Abandoned):
        retype.check_use([("fold", "ab", (None, None))], {"ab": shapeless})
    with pytest.raises(retype.Abandoned):
        retype.check_use([("fill", "z", ("float32", None))], {})
    retype.check_use([("fill", "z", ("float32", (2, 3)))], {})  # the file declares it: kept
    retype.check_use([("fold", "ab", (None, None))], {"ab": Const("ab", "float32", (6000, 4), ())})  # propagated
    valued = Const("c", "int64", (2,), ())
    valued.value = np.zeros(2, np.int64)
    retype.check_use([("fold", "c", (None, None))], {"c": valued})


def test_a_graph_of_few_nodes_and_many_stored_tensors_is_built_while_inference_runs(tmp_path, monkeypatch):
    """Weights split in parts joined by ``Concat`` (too big to compute): the joined shape is propagated
    from the parts, so the build overlapping inference is not abandoned; it equals the sequential one."""
    nodes = [helper.make_node("Concat", ["a", "b", "c"], ["abc"], axis=-2, name="cat"),
             helper.make_node("MatMul", ["x", "abc"], ["y"], name="mm")]
    parts = [_w("a", 3000, 4), _w("b", 2000, 4), _w("c", 1000, 4)]  # 24,000 elements: not computed
    model = _model(nodes, [_vi("x", [2, 6000])], [_vi("y")], parts)
    assert retype.may_overlap(model)
    graph, builds = _both(_save(model, tmp_path / "stored.onnx"), monkeypatch)
    assert builds == 1 and graph.layer("mm").node_shapes == [[(2, 4)]]
    assert [w.shape for w in graph.layer("mm").weights] == [(3000, 4), (2000, 4), (1000, 4)]
