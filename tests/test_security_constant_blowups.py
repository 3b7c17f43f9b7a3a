"""Issue 13 item 5, the ONNX bullets: small files whose constants would take gigabytes if built.

Memory and time are measured by ``bench/bench_constant_blowups.py`` (a subprocess per run, not a timed
test); here the results are checked, and that nothing was materialised: the code that would build the
tensor is replaced by one that fails the test."""

from __future__ import annotations

import math

import numpy as np
import pytest

from helpers.constant_blowups import CONCAT_PIECE, CONCAT_REPEATS, FILL_ELEMENTS, write_concat_blowup, write_fill_blowup
from inspector.analysis.weights import analyze, fill_spec
from inspector.loaders import load
from inspector.loaders.onnx import fold
from inspector.loaders.onnx.tensors import FillReader
from inspector.rules import lint


def _refuse(*args, **kwargs):
    raise AssertionError("a constant was materialised")


def test_fill_statistics_are_closed_form(tmp_path, monkeypatch):
    path = write_fill_blowup(tmp_path / "fill.onnx")
    assert path.stat().st_size < 200
    graph = load(path)
    monkeypatch.setattr(FillReader, "__call__", _refuse)
    report = analyze(graph)
    stats = report.tensors["fill"]
    assert (stats.size, stats.shape, stats.dtype) == (FILL_ELEMENTS, (FILL_ELEMENTS,), "float32")
    assert (stats.minimum, stats.maximum, stats.mean, stats.std, stats.zeros) == (0.5, 0.5, 0.5, 0.0, 0)
    assert stats.placeholder and stats.finite and stats.constant
    assert report.unreadable == ()
    lint(graph)  # every rule runs on the description, none builds the tensor


@pytest.mark.parametrize("fill,dtype,expected", [
    (0.0, "float32", {"zeros": 16, "minimum": 0.0}),
    (float("nan"), "float32", {"nan": 16, "inf": 0}),
    (-float("inf"), "float16", {"inf": 16, "nan": 0}),
    (1e5, "float32", {"f16_overflow": 16, "maximum": 1e5}),
    (1e-30, "float32", {"f16_underflow": 16}),
    (True, "bool", {"minimum": 1.0, "zeros": 0}),
    (-7, "int64", {"mean": -7.0, "f16_overflow": 0}),
])
def test_fill_statistics_equal_those_of_the_built_tensor(tmp_path, fill, dtype, expected):
    """Closed form and the values agree (the positive case), field by field."""
    from inspector.analysis.weights import fill_stats, tensor_stats
    from inspector.ir import Weight

    w = Weight(name="w", role="B", shape=(4, 4), dtype=dtype, reader=FillReader((4, 4), fill, dtype, "w"))
    built = tensor_stats(w, w.read(), placeholder=True)
    described = fill_stats(w, fill, dtype)
    for name, value in expected.items():
        assert getattr(described, name) == value
    for field in built.__dataclass_fields__:
        a, b = getattr(built, field), getattr(described, field)
        assert a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b)) or a == pytest.approx(b), field


def test_stored_tensors_are_still_read(tmp_path):
    """Only generated fills are described; a stored constant is read (the negative case)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(3, 4), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "m.onnx")
    loaded = load(tmp_path / "m.onnx")
    (weight,) = loaded.layers[-1].weights
    assert fill_spec(weight) is None
    stats = analyze(loaded).tensors[weight.key]
    assert (stats.minimum, stats.maximum, stats.placeholder) == (0.0, 11.0, False)


def _reshape(graph):
    (layer,) = [lay for lay in graph.layers if lay.type == "Reshape"]
    return layer


def test_concat_of_a_repeated_constant_is_not_folded(tmp_path, monkeypatch):
    path = write_concat_blowup(tmp_path / "concat.onnx")
    assert path.stat().st_size < 210_000
    called: list[int] = []
    monkeypatch.setitem(fold._EVALUATORS, "Concat", lambda v, a: called.append(len(v)))
    graph = load(path)
    assert called == []  # refused from the inputs' sizes, before anything was computed
    assert CONCAT_PIECE * CONCAT_REPEATS > fold.SMALL_VALUE
    shape = _reshape(graph).node_shapes[0][0]
    assert shape is None or not all(isinstance(d, int) for d in shape)  # not folded: unknown
    assert any("data propagation would build a value that long" in note for note in graph.notes)


def test_small_concat_still_folds(tmp_path):
    """The same file with a short Concat: folded, and the Reshape gets its shape (the positive case)."""
    graph = load(write_concat_blowup(tmp_path / "small.onnx", piece=2, repeats=3))
    assert _reshape(graph).node_shapes[0][0] == (1, 1)
