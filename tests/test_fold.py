"""Constant shape subgraphs folded for shape inference (issue 11 item 3), and the bounds on folding.

The graphs are built by hand with ``onnx.helper`` in the shape TorchScript gives ``expand``:
``ConstantOfShape → Mul → Equal → Where → Expand``, with the target computed from ``Shape``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from inspector.analysis.macs import count_macs
from inspector.loaders import load
from inspector.loaders.onnx import fold, shapefold
from inspector.loaders.onnx.ops import SMALL_VALUE
from inspector.loaders.onnx.scope import Const

HEADS, SEQ, DIM = 12, 128, 64
ATTENTION_MACS = 2 * HEADS * SEQ * SEQ * DIM
"""Q·Kᵀ and softmax(…)·V, each ``[1, 12, 128, 128]`` × ``[…, 64]``."""


def _int64(name: str, values: list[int]) -> onnx.TensorProto:
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def _mask_model(tmp_path: Path, *, seq: int | str = SEQ, target_from_input: bool = False,
                big_concat: int = 0) -> Path:
    """``x [1,1,1,64]`` expanded to ``[1, 12, seq, 64]`` by the TorchScript ``expand`` chain, then attention.

    ``target_from_input``: the ``Where`` picks from a graph input (not constant); ``big_concat``: the
    target passes through a ``Concat`` of two ``big_concat``-element constants (too large to fold)."""
    inits = [_int64("zero", [0]), _int64("one", [1]), _int64("heads", [HEADS]), _int64("four", [4]),
             _int64("minus1", [-1]), _int64("dim", [DIM]), _int64("s0", [0]), _int64("s4", [4])]
    nodes = [
        helper.make_node("Shape", ["ids"], ["ids_shape"]),
        helper.make_node("Gather", ["ids_shape", "one"], ["seq"], axis=0),
        helper.make_node("Concat", ["one", "heads", "seq", "dim"], ["shape_vec"], axis=0),
    ]
    if big_concat:
        inits.append(_int64("pad", [1] * big_concat))
        nodes += [helper.make_node("Concat", ["shape_vec", "pad"], ["long_vec"], axis=0),
                  helper.make_node("Slice", ["long_vec", "s0", "s4"], ["target_in"])]
    else:
        nodes.append(helper.make_node("Identity", ["shape_vec"], ["target_in"]))
    pick = "runtime_dims" if target_from_input else "target_in"
    nodes += [
        helper.make_node("ConstantOfShape", ["four"], ["ones"], value=_int64("v", [1])),
        helper.make_node("Mul", ["ones", "minus1"], ["neg"]),
        helper.make_node("Equal", ["target_in", "neg"], ["eq"]),
        helper.make_node("Where", ["eq", "ones", pick], ["target"]),
        helper.make_node("Expand", ["x", "target"], ["h"], name="expand"),
        helper.make_node("Transpose", ["h"], ["ht"], perm=[0, 1, 3, 2], name="kt"),
        helper.make_node("MatMul", ["h", "ht"], ["scores"], name="qk"),
        helper.make_node("Softmax", ["scores"], ["probs"], axis=-1, name="softmax"),
        helper.make_node("MatMul", ["probs", "h"], ["out"], name="pv"),
    ]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 1, DIM]),
              helper.make_tensor_value_info("ids", TensorProto.INT64, [1, seq])]
    if target_from_input:
        inputs.append(helper.make_tensor_value_info("runtime_dims", TensorProto.INT64, [4]))
    graph = helper.make_graph(nodes, "mask", inputs, [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
                              inits)
    path = tmp_path / "mask.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _shape(graph, name):
    return graph.layer(name).node_shapes[0][0]


def test_onnx_alone_leaves_the_chain_unknown(tmp_path):
    """The oracle: ONNX's own shape inference (with data propagation) does not resolve the chain."""
    model = onnx.shape_inference.infer_shapes(onnx.load(_mask_model(tmp_path)), data_prop=True)
    shapes = {vi.name: [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
              for vi in model.graph.value_info}
    assert None in shapes.get("scores", [None])


def test_constant_mask_chain_resolves_attention_shapes_and_macs(tmp_path):
    graph = load(_mask_model(tmp_path))
    assert _shape(graph, "expand") == (1, HEADS, SEQ, DIM)
    assert _shape(graph, "qk") == (1, HEADS, SEQ, SEQ)
    assert _shape(graph, "pv") == (1, HEADS, SEQ, DIM)
    report = count_macs(graph)
    assert report.complete
    assert report.total == ATTENTION_MACS


def test_a_chain_that_is_not_constant_stays_unknown(tmp_path):
    graph = load(_mask_model(tmp_path, target_from_input=True))
    assert not all(isinstance(d, int) for d in _shape(graph, "qk") or (None,))
    assert not count_macs(graph).complete


def test_a_symbolic_dim_is_not_folded(tmp_path):
    graph = load(_mask_model(tmp_path, seq="seq"))
    assert not all(isinstance(d, int) for d in _shape(graph, "qk") or (None,))
    assert not count_macs(graph).complete


def test_a_fold_over_the_size_limit_is_refused(tmp_path):
    """A target that passes through a Concat larger than SMALL_VALUE is not folded: shapes stay unknown."""
    graph = load(_mask_model(tmp_path, big_concat=SMALL_VALUE))
    assert not count_macs(graph).complete
    small = load(_mask_model(tmp_path, big_concat=8))  # the same chain, small enough: folded
    assert count_macs(small).total == ATTENTION_MACS


def test_refine_runs_no_inference_when_nothing_folds(tmp_path, monkeypatch):
    model = onnx.shape_inference.infer_shapes(onnx.load(_mask_model(tmp_path, target_from_input=True)))
    calls = []
    monkeypatch.setattr("inspector.loaders.onnx.inference.run_shape_inference",
                        lambda m, **k: calls.append(1) or m)
    _, folded = shapefold.refine(model, data_prop=True)
    assert (folded, calls) == (0, [])
    model = onnx.shape_inference.infer_shapes(onnx.load(_mask_model(tmp_path)))
    before = [n.input[:] for n in model.graph.node], len(model.graph.initializer)
    refined, folded = shapefold.refine(model, data_prop=False)
    assert folded == 1
    assert ([n.input[:] for n in refined.graph.node], len(refined.graph.initializer)) == before  # put back


# -- the evaluator -------------------------------------------------------------------------------------
def _const(value) -> Const:
    v = np.asarray(value)
    c = Const("c", str(v.dtype), tuple(v.shape), ())
    c.value, c.evaluated = v, True
    return c


def _eval(op: str, *values, budget: fold.FoldBudget | None = None, **attrs):
    node = helper.make_node(op, [f"i{k}" for k in range(len(values))], ["o"], **attrs)
    return fold.evaluate(node, [_const(v) for v in values], lambda c: c.value, budget=budget)


@pytest.mark.parametrize("op,values,attrs,expected", [
    ("Equal", ([1, -1, 3], [-1, -1, -1]), {}, [False, True, False]),
    ("Where", ([True, False], [1, 1], [7, 8]), {}, [1, 8]),
    ("Expand", ([[1], [2]], [2, 3]), {}, [[1, 1, 1], [2, 2, 2]]),
    ("ConstantOfShape", ([3],), {"value": numpy_helper.from_array(np.array([5], dtype=np.int64))}, [5, 5, 5]),
    ("ReduceProd", ([2, 3, 4],), {"keepdims": 0}, 24),
    ("Min", ([4, 9], [6, 1]), {}, [4, 1]),
    ("Max", ([4, 9], [6, 1], [5, 5]), {}, [6, 9]),
    ("Less", ([1, 5], [3, 3]), {}, [True, False]),
    ("Not", ([True, False],), {}, [False, True]),
])
def test_shape_arithmetic_ops_evaluate(op, values, attrs, expected):
    out = _eval(op, *values, **attrs)
    assert out is not None
    assert out[0].tolist() == expected


def test_result_size_is_bounded_before_computing(monkeypatch):
    def boom(v, a):
        raise AssertionError("evaluated")

    monkeypatch.setitem(fold._EVALUATORS, "Concat", boom)
    piece = np.ones(SMALL_VALUE, dtype=np.int64)
    node = helper.make_node("Concat", ["p"] * 65536, ["o"], axis=0)
    assert fold.evaluate(node, [_const(piece)] * 65536, lambda c: c.value) is None
    monkeypatch.setitem(fold._EVALUATORS, "Expand", boom)
    assert _eval("Expand", [1], [1 << 40]) is None
    assert _eval("ConstantOfShape", [1 << 62]) is None
    assert _eval("Range", 0, 1 << 40, 1) is None


def test_the_fold_budget_is_shared_and_refuses_when_spent():
    budget = fold.FoldBudget(remaining=10)
    assert _eval("Add", [1] * 8, [1] * 8, budget=budget) is not None
    assert budget.remaining == 2
    assert _eval("Add", [1] * 8, [1] * 8, budget=budget) is None
    assert _eval("Add", [1], [1], budget=budget) is None  # spent: nothing more folds


def test_no_fold_pass_when_inference_resolved_every_dim(tmp_path, monkeypatch):
    """Models whose shapes inference already knows pay no pass over their nodes (the summary path's speed)."""
    passes: list[int] = []
    real = shapefold._fold_pass

    def counting(model, budget):
        passes.append(1)
        return real(model, budget)

    monkeypatch.setattr(shapefold, "_fold_pass", counting)
    w = numpy_helper.from_array(np.ones((64, 8), dtype=np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "plain.onnx")
    assert count_macs(load(tmp_path / "plain.onnx")).total == 512
    if shapefold.inference.ISOLATE_INFERENCE:  # the gate reads the helper's answer
        assert passes == []
    load(_mask_model(tmp_path))
    assert passes


@pytest.mark.parametrize(("shapes", "axis", "expected"), [
    ([(3000, 4), (2000, 4), (1000, 4)], 0, (6000, 4)),
    ([(3000, 4), (2000, 4)], -2, (5000, 4)),
    ([(2, 3, 5), (2, 7, 5)], 1, (2, 10, 5)),
    ([(3000, 4)], 0, (3000, 4)),
    ([(3000, 4), (2000, 5)], 0, None),  # dims disagree off the axis
    ([(3000, 4), (2000,)], 0, None),  # ranks disagree
    ([(3000, 4), (2000, 4)], 2, None),  # axis out of range
    ([(3000, 4), (2000, 4)], -3, None),
    ([(3000, 4), ("n", 4)], 0, None),  # a symbolic dim
    ([(3000, 4), None], 0, None),  # an unknown shape
    ([(3000, 4), (2000, 4)], None, None),  # no axis: opset 1's default is not assumed
    ([(), ()], 0, None),  # scalars do not concatenate
])
def test_a_concat_of_stored_tensors_gets_the_shape_inference_would_give(shapes, axis, expected):
    from inspector.loaders.onnx.scope import Const

    names = [f"p{i}" for i in range(len(shapes))]
    node = helper.make_node("Concat", names, ["joined"], **({} if axis is None else {"axis": axis}))
    inputs = [Const(n, "float32", s, ()) for n, s in zip(names, shapes, strict=True)]
    assert fold.propagate_shape("Concat", node, list(inputs)) == expected
    if expected is not None:  # what onnx's own shape inference says of the same node
        stored = [numpy_helper.from_array(np.zeros(s, np.float32), n) for n, s in zip(names, shapes, strict=True)]
        out_info = helper.make_tensor_value_info("joined", TensorProto.FLOAT, None)
        graph = helper.make_graph([node], "g", [], [out_info], stored)
        inferred = onnx.shape_inference.infer_shapes(helper.make_model(graph), strict_mode=True)
        out = inferred.graph.output[0].type.tensor_type.shape
        assert tuple(d.dim_value for d in out.dim) == expected
