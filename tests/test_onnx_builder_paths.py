"""The ONNX builder's per-node fast paths (issue 14) give what the general ones give: the shape
computation pass visited from shape operands backwards against a pass over every layer, the
file-order check against dependency order, the top-level constant lookup against a sub-graph's
scope chain, origins of folded constants, and the slot constructors of the graph records; and the
scan for undecodable text reads every field it should.  No timed tests: ``bench/bench_extremes.py``
measures the speed."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import numpy as np
import pytest

from helpers.onnx_models import onnx_model, tensor, value_info
from inspector.analysis.params import count_params
from inspector.ir import ExternalData, Inbound, ModelGraph, Operand
from inspector.loaders import load
from inspector.loaders.onnx import builder as builder_module
from inspector.loaders.onnx.ops import NON_DATA
from inspector.loaders.onnx.scope import Source


def save_onnx(model, path: Path) -> Path:
    """Save ``model`` as it is (no checker: some of these graphs are out of order on purpose)."""
    path.write_bytes(model.SerializeToString())
    return path


def _reference_shape_pass(graph: ModelGraph) -> set[str]:
    """The layers a pass over every layer in reverse order finds to compute only shapes
    (the builder's pass before issue 14): those whose outputs all end, directly or through
    other such layers, in shape, axes or index operands."""
    graph_outputs = {o for lay in graph.layers for o in lay.config.get("@outputs", [])
                     if any(ref.layer == lay.name for ref in graph.outputs)}
    consumers: dict[str, list[tuple[str, int]]] = {}
    for lay in graph.layers:
        for i, operand in enumerate(lay.operands):
            if operand.kind == "input":
                consumers.setdefault(operand.tensor, []).append((lay.name, i))
    types = {lay.name: lay.type for lay in graph.layers}
    shape_only: set[str] = set()
    for lay in reversed(graph.layers):
        outs = [o for o in lay.config.get("@outputs", []) if o]
        if not outs or any(o in graph_outputs for o in outs):
            continue
        uses = [use for o in outs for use in consumers.get(o, ())]
        if uses and all(i in NON_DATA.get(types[name], frozenset()) or name in shape_only for name, i in uses):
            shape_only.add(lay.name)
    return shape_only


def _shape_chain_model(*, reversed_nodes: bool = False, data_use: bool = False):
    """``x`` reshaped to a shape computed at run time from ``x``'s own shape and stored int64 and
    float tensors (``Shape → Gather → Concat → Cast → Reshape``); a MatMul with a real weight
    after it.  ``data_use``: the computed shape also reaches an ``Add`` as data."""
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Shape", ["x"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "idx"], ["batch"], name="gather", axis=0),
        helper.make_node("Concat", ["batch", "tail"], ["target_i"], name="concat", axis=0),
        helper.make_node("Cast", ["target_i"], ["target_f"], name="to_float", to=TensorProto.FLOAT),
        helper.make_node("Mul", ["target_f", "scale"], ["scaled"], name="scale_shape"),
        helper.make_node("Cast", ["scaled"], ["target"], name="to_int", to=TensorProto.INT64),
        helper.make_node("Reshape", ["x", "target"], ["r"], name="reshape"),
        helper.make_node("MatMul", ["r", "w"], ["y"], name="matmul"),
    ]
    outputs = [value_info("y", [2, 3])]
    if data_use:
        nodes.append(helper.make_node("Add", ["scaled", "scaled"], ["leak"], name="leak"))
        outputs.append(value_info("leak", [2]))
    inits = [tensor("idx", np.array([0], dtype=np.int64)), tensor("tail", np.array([-1], dtype=np.int64)),
             tensor("scale", np.ones(2, dtype=np.float32)), tensor("w", np.ones((4, 3), dtype=np.float32))]
    if reversed_nodes:
        nodes = nodes[::-1]
    return onnx_model(nodes, [value_info("x", [2, 2, 2])], outputs, inits)


def _load_without_shape_pass(path: Path, monkeypatch: pytest.MonkeyPatch) -> ModelGraph:
    with monkeypatch.context() as m:
        m.setattr(builder_module.Builder, "_drop_shape_computations", lambda self, *args: None)
        return load(path)


@pytest.mark.parametrize("reversed_nodes", [False, True])
@pytest.mark.parametrize("data_use", [False, True])
def test_shape_pass_finds_what_a_pass_over_every_layer_finds(tmp_path, monkeypatch, reversed_nodes, data_use):
    path = save_onnx(_shape_chain_model(reversed_nodes=reversed_nodes, data_use=data_use), tmp_path / "m.onnx")
    before = _load_without_shape_pass(path, monkeypatch)
    expected = _reference_shape_pass(before)
    graph = load(path)
    dropped = {lay.name for lay in graph.layers
               if not lay.weights and before.layer(lay.name).weights}
    with_weights = {lay.name for lay in before.layers if lay.weights}
    assert dropped == expected & with_weights
    assert graph.layer("matmul").weights  # a real weight stays
    if data_use:  # the scaled shape is also data: its stored scale is a parameter again
        assert "scale_shape" not in expected and graph.layer("scale_shape").weights
        assert graph.layer("scale_shape").operands[1].kind == "weight"
    else:
        assert {"gather", "concat", "to_float", "scale_shape", "to_int"} <= expected
        assert not graph.layer("scale_shape").weights
        assert graph.layer("scale_shape").operands[1].kind == "constant"
    assert (reversed_nodes and any("not in topological order" in n for n in graph.notes)) or \
        not any("topological" in n for n in graph.notes)


def test_file_order_and_dependency_order_give_the_same_graph(tmp_path):
    in_order = load(save_onnx(_shape_chain_model(), tmp_path / "a.onnx"))
    shuffled = load(save_onnx(_shape_chain_model(reversed_nodes=True), tmp_path / "b.onnx"))
    assert [lay.name for lay in in_order.layers] == [lay.name for lay in shuffled.layers]
    # (shape inference needs file order: only what the builder decides is compared)
    def decided(graph: ModelGraph) -> list:
        return [([(o.name, o.tensor, o.kind, o.value) for o in lay.operands], [w.key for w in lay.weights])
                for lay in graph.layers]

    assert decided(in_order) == decided(shuffled)
    assert count_params(in_order).totals == count_params(shuffled).totals
    assert not in_order.notes and any("dependency order" in n for n in shuffled.notes)


def test_a_node_consuming_its_own_output_keeps_the_file_order(tmp_path):
    """An input produced by the same node is no reason to reorder (and no cycle note)."""
    from onnx import helper

    nodes = [helper.make_node("Relu", ["x"], ["a"], name="first"),
             helper.make_node("Add", ["a", "b"], ["b"], name="self_loop"),
             helper.make_node("Relu", ["b"], ["y"], name="last")]
    graph = load(save_onnx(onnx_model(nodes, [value_info("x", [2])], [value_info("y", [2])]), tmp_path / "m.onnx"))
    assert [lay.name for lay in graph.layers] == ["b", "x", "first", "self_loop", "last"]  # 'b': read before made
    assert graph.notes == ["Tensor 'b' in graph 'g' is used but never defined."]


def _branch_model(*, in_branch: bool):
    """``MatMul(x, w) + b`` with stored ``w``, ``b`` and a Reshape to a stored shape: in the main graph,
    or inside both branches of an ``If`` (where constants and tensors are found through the scope chain)."""
    from onnx import TensorProto, helper

    def body(suffix: str) -> list:
        return [helper.make_node("MatMul", ["x", "w"], [f"m{suffix}"], name=f"matmul{suffix}"),
                helper.make_node("Add", [f"m{suffix}", "b"], [f"a{suffix}"], name=f"add{suffix}"),
                helper.make_node("Reshape", [f"a{suffix}", "shape"], [f"y{suffix}"], name=f"reshape{suffix}")]

    inits = [tensor("w", np.ones((4, 3), dtype=np.float32)), tensor("b", np.ones(3, dtype=np.float32)),
             tensor("shape", np.array([3, 2], dtype=np.int64))]
    if not in_branch:
        return onnx_model(body(""), [value_info("x", [2, 4])], [value_info("y", [3, 2])], inits)
    branches = [helper.make_graph(body(s), f"branch{s}", [], [value_info(f"y{s}", [3, 2])]) for s in ("_t", "_e")]
    node = helper.make_node("If", ["cond"], ["y"], name="if", then_branch=branches[0], else_branch=branches[1])
    inputs = [value_info("x", [2, 4]), value_info("cond", [], TensorProto.BOOL)]
    return onnx_model([node], inputs, [value_info("y", [3, 2])], inits)


def test_constants_found_through_the_scope_chain_match_the_top_level_lookup(tmp_path):
    top = load(save_onnx(_branch_model(in_branch=False), tmp_path / "top.onnx"))
    nested = load(save_onnx(_branch_model(in_branch=True), tmp_path / "nested.onnx"))
    branch = nested.layer("if").subgraphs["then_branch"]

    def described(graph: ModelGraph, suffix: str) -> list:
        rows = []
        for name in ("matmul", "add", "reshape"):
            lay = graph.layer(name + suffix)
            rows.append(([(o.name, o.kind, o.dtype, o.shape, o.value) for o in lay.operands],
                         [(w.name, w.role, w.shape, w.dtype, w.trainable, w.constant) for w in lay.weights],
                         lay.output_shapes))
        return rows

    assert described(branch, "_t") == described(top, "")
    assert [o.kind for o in branch.layer("matmul_t").operands] == ["input", "weight"]
    assert branch.layer("x").config.get("outer_scope") is True  # the activation comes from the outer graph
    assert count_params(nested).totals.params == count_params(top).totals.params == 4 * 3 + 3


def test_folded_origins_count_each_stored_tensor_once_with_its_quantization():
    a = Source("a", "a", "float32", (2,))
    b = Source("b", "b", "float32", (2,))
    c = builder_module.Const("c", "float32", (2,), ((a, False), (b, False)))
    again = builder_module.Const("d", "float32", (2,), ((a, False),))
    # Concat: every position is data; ``a`` twice counts once, first occurrence first.
    assert builder_module._data_origins("Concat", [c, again, None]) == ((a, False), (b, False))
    # DequantizeLinear: positions 1 and 2 are scale and zero point: ``a`` there is a quantization tensor too.
    scale = builder_module.Const("s", "float32", (), ((a, False),))
    assert builder_module._data_origins("DequantizeLinear", [again, scale]) == ((a, False), (a, True))
    # Reshape's shape operand is not data.
    assert builder_module._data_origins("Reshape", [again, c]) == ((a, False),)


@pytest.mark.parametrize("cls, args, kwargs", [
    (Inbound, ("conv", 1, 2), {"layer": "conv", "node_index": 1, "tensor_index": 2}),
    (Inbound, ("conv",), {"layer": "conv"}),
    (Operand, ("X", "t", "input", "float32", (1, 2), [[1]]),
     {"name": "X", "tensor": "t", "kind": "input", "dtype": "float32", "shape": (1, 2), "value": [[1]]}),
    (Operand, ("B", "", "absent"), {"name": "B", "tensor": "", "kind": "absent"}),
    (ExternalData, ("w.bin", 64, 128), {"location": "w.bin", "offset": 64, "length": 128}),
    (ExternalData, ("w.bin",), {"location": "w.bin"}),
])
def test_slot_constructors_behave_as_frozen_dataclasses(cls, args, kwargs):
    made = cls(*args)
    assert made == cls(**kwargs)
    for f in dataclasses.fields(cls):
        expected = kwargs.get(f.name, f.default)
        assert getattr(made, f.name) == expected
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(made, dataclasses.fields(cls)[0].name, "other")
    assert pickle.loads(pickle.dumps(made)) == made
    first = dataclasses.fields(cls)[0].name
    changed = dataclasses.replace(made, **{first: "other"})
    assert getattr(changed, first) == "other" and changed != made
    assert repr(made).startswith(f"{cls.__name__}(")
    if cls is not Operand or not isinstance(kwargs.get("value"), list):
        assert hash(made) == hash(cls(**kwargs))


def _text_graph(where: str) -> ModelGraph:
    """A small graph with text in every field the bytes scan reads; ``where`` names the one that holds bytes."""
    from inspector.ir import Layer, Weight

    def text(field: str) -> str | bytes:
        return b"\xff" + field.encode() if field == where else field

    weight = Weight(name=text("weight"), role="kernel", shape=(2,), dtype="float32",
                    external=ExternalData(text("location")))
    inner = Layer(name=text("inner"), type="Relu")
    sub = ModelGraph(name="body", format="onnx", layers=[inner])
    layer = Layer(name=text("name"), type=text("type"), config={text("attr"): 1, "@outputs": [text("output")]},
                  node_shapes=[[(2, text("dim"))]], weights=[weight], subgraphs={"then_branch": sub},
                  operands=[Operand("X", text("tensor"), "input", "float32", (text("operand_dim"),))])
    return ModelGraph(name="g", format="onnx", layers=[layer], metadata={"producer_name": text("producer")})


@pytest.mark.parametrize("where", ["name", "type", "attr", "output", "dim", "weight", "location", "inner", "tensor",
                                   "operand_dim", "producer"])
def test_bytes_scan_finds_bytes_in_every_field(where):
    from inspector.loaders.onnx.read import _graph_has_bytes

    assert _graph_has_bytes(_text_graph(where))
    assert not _graph_has_bytes(_text_graph("nowhere"))
