"""The ONNX parameter convention (docs/architecture.md, Parameter semantics; issue 11 item 5).

A parameter is a stored constant of a floating dtype with rank ≥ 1 consumed as data,
or an integer tensor consumed as the weight of a quantized op.  0-d scalars, bool masks
and integer labels are *constants*, reported apart; Clip bounds and Pad values are neither.
Every model here is built by hand with ``onnx.helper``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from helpers.onnx_models import onnx_model, save_onnx, value_info
from inspector.analysis.params import ParamCount, count_params
from inspector.loaders import load
from inspector.reporters.summary import render


def _t(name: str, value: object, dtype: type = np.float32):
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name=name)


def _load(tmp_path: Path, nodes: list, inputs: list, outputs: list, inits: list = (), *, opset: int = 17):
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = save_onnx(onnx_model(nodes, inputs, outputs, inits, opset=opset), tmp_path / "m.onnx")
    return load(path)


X = value_info("x", [2, 4])
Y = value_info("y", [2, 4])


def test_zero_d_scalar_is_a_constant_and_a_vector_a_parameter(tmp_path):
    nodes = [helper.make_node("Mul", ["x", "s"], ["h"]), helper.make_node("Mul", ["h", "w"], ["y"])]
    report = count_params(_load(tmp_path, nodes, [X], [Y], [_t("s", 0.125), _t("w", np.ones(4))]))
    assert report.totals == ParamCount(4, 4, 0, 16)
    assert report.constants == ParamCount(1, 0, 1, 4)
    assert report.bytes_by_dtype == (("float32", 4, 16),)


def test_rank_one_single_element_float_added_to_data_is_a_parameter(tmp_path):
    nodes = [helper.make_node("Add", ["x", "b"], ["y"])]
    report = count_params(_load(tmp_path, nodes, [X], [Y], [_t("b", [0.5])]))
    assert report.totals.params == 1
    assert report.constants.params == 0


def test_zero_d_constant_node_is_a_constant(tmp_path):
    nodes = [helper.make_node("Constant", [], ["eps"], value=_t("eps_value", 1e-5)),
             helper.make_node("Add", ["x", "eps"], ["y"])]
    report = count_params(_load(tmp_path, nodes, [X], [Y]))
    assert report.totals.params == 0
    assert report.constants.params == 1


def test_bool_causal_mask_into_where_is_a_constant(tmp_path):
    mask = np.tril(np.ones((4, 4), dtype=bool))[:2]
    nodes = [helper.make_node("Where", ["mask", "x", "fill"], ["y"])]
    graph = _load(tmp_path, nodes, [X], [Y], [_t("mask", mask, bool), _t("fill", -np.inf)])
    report = count_params(graph)
    assert report.totals.params == 0
    assert report.constants == ParamCount(9, 0, 9, 8 + 4)
    assert {w.name for w in graph.iter_weights() if w.constant} == {"mask", "fill"}


def test_int64_class_labels_are_a_constant(tmp_path):
    nodes = [helper.make_node("ArgMax", ["x"], ["i"], axis=1, keepdims=0),
             helper.make_node("Gather", ["labels", "i"], ["y"])]
    out = value_info("y", [2], TensorProto.INT64)
    report = count_params(_load(tmp_path, nodes, [X], [out], [_t("labels", [3, 7, 9, 11], np.int64)]))
    assert report.totals.params == 0
    assert report.constants == ParamCount(4, 0, 4, 32)


def test_clip_bounds_and_pad_value_are_not_counted(tmp_path):
    nodes = [helper.make_node("Clip", ["x", "lo", "hi"], ["c"]),
             helper.make_node("Pad", ["c", "pads", "v"], ["p"]),
             helper.make_node("Mul", ["p", "w"], ["y"])]
    inits = [_t("lo", 0.0), _t("hi", 6.0), _t("pads", [0, 1, 0, 1], np.int64), _t("v", 0.5),
             _t("w", np.ones(6))]
    report = count_params(_load(tmp_path, nodes, [X], [value_info("y", [2, 6])], inits))
    assert report.totals.params == 6
    assert report.constants.params == 0


def test_qlinearconv_int8_weight_is_a_parameter(tmp_path):
    x = value_info("x", [1, 1, 5, 5], TensorProto.UINT8)
    y = value_info("y", [1, 2, 3, 3], TensorProto.UINT8)
    inits = [_t("xs", 0.1), _t("xz", 0, np.uint8), _t("w", np.ones((2, 1, 3, 3)), np.int8), _t("ws", [0.1, 0.2]),
             _t("wz", [0, 0], np.int8), _t("ys", 0.3), _t("yz", 0, np.uint8), _t("b", [1, 2], np.int32)]
    nodes = [helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], ["y"])]
    graph = _load(tmp_path, nodes, [x], [y], inits)
    report = count_params(graph)
    assert report.totals == ParamCount(18 + 2, 20, 0, 18 + 8)
    assert report.quantization.params == 1 + 1 + 2 + 2 + 1 + 1
    assert report.constants.params == 0


def test_dequantized_int8_constant_is_a_parameter_int_data_is_not(tmp_path):
    nodes = [helper.make_node("DequantizeLinear", ["wq", "ws"], ["w"]),
             helper.make_node("MatMul", ["x", "w"], ["h"]),
             helper.make_node("Cast", ["ids"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("Add", ["h", "f"], ["y"])]
    inits = [_t("wq", np.ones((4, 3)), np.int8), _t("ws", 0.05), _t("ids", [0, 1, 2], np.int64)]
    graph = _load(tmp_path, nodes, [X], [value_info("y", [2, 3])], inits)
    report = count_params(graph)
    assert report.totals == ParamCount(12, 12, 0, 12)
    assert report.quantization.params == 1
    assert report.constants == ParamCount(3, 0, 3, 24)


def test_gathered_int8_table_dequantized_is_a_parameter(tmp_path):
    # onnxruntime's quantize_dynamic of an embedding: Gather(uint8 table, ids) -> DequantizeLinear, the same
    # table its QDQ form dequantizes first (found by the r10 sweep: 32,000 of a text model's 39,632 parameters
    # were constants)
    ids = value_info("ids", [2, 3], TensorProto.INT64)
    out = value_info("y", [2, 3, 4])
    inits = [_t("table", np.arange(40).reshape(10, 4), np.uint8), _t("s", 0.05), _t("z", 128, np.uint8)]
    for order, form in ((["rows"], "dynamic"), (["w"], "qdq")):
        if form == "dynamic":
            nodes = [helper.make_node("Gather", ["table", "ids"], order),
                     helper.make_node("DequantizeLinear", ["rows", "s", "z"], ["y"])]
        else:
            nodes = [helper.make_node("DequantizeLinear", ["table", "s", "z"], order),
                     helper.make_node("Gather", ["w", "ids"], ["y"])]
        report = count_params(_load(tmp_path / form, nodes, [ids], [out], inits))
        assert report.totals == ParamCount(40, 40, 0, 40), form
        assert report.quantization.params == 2, form
        assert report.constants.params == 0, form


def test_dynamic_quantize_lstm_int8_weights_are_parameters(tmp_path):
    # com.microsoft DynamicQuantizeLSTM (onnxruntime's quantize_dynamic of an LSTM): W and R int8, their scales
    # and zero points apart, sequence_lens an index operand
    x = value_info("x", [5, 2, 3])
    h = value_info("y", [5, 1, 2, 4])
    inits = [_t("W", np.ones((1, 3, 16)), np.int8), _t("R", np.ones((1, 4, 16)), np.int8),
             _t("B", np.zeros((1, 32))), _t("lens", [5, 5], np.int32), _t("ws", [0.1]), _t("wz", [0], np.int8),
             _t("rs", [0.1]), _t("rz", [0], np.int8)]
    node = helper.make_node("DynamicQuantizeLSTM", ["x", "W", "R", "B", "lens", "", "", "", "ws", "wz", "rs", "rz"],
                            ["y"], domain="com.microsoft", hidden_size=4)
    model = onnx_model([node], [x], [h], inits)
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    report = count_params(load(save_onnx(model, tmp_path / "lstm.onnx")))
    assert report.totals == ParamCount(48 + 64 + 32, 48 + 64 + 32, 0, 48 + 64 + 128)
    assert report.quantization.params == 4
    assert report.constants.params == 0


def test_qlinearconcat_scales_of_every_input_are_quantization(tmp_path):
    # com.microsoft QLinearConcat is variadic: Y_scale, Y_zero_point, then X, X_scale, X_zero_point per input
    a, b = value_info("a", [1, 2], TensorProto.INT8), value_info("b", [1, 3], TensorProto.INT8)
    inits = [_t("ys", 0.1), _t("yz", 0, np.int8), _t("as", 0.2), _t("az", 1, np.int8), _t("bs", 0.3),
             _t("bz", 2, np.int8)]
    node = helper.make_node("QLinearConcat", ["ys", "yz", "a", "as", "az", "b", "bs", "bz"], ["y"],
                            domain="com.microsoft", axis=1)
    model = onnx_model([node], [a, b], [value_info("y", [1, 5], TensorProto.INT8)], inits)
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    report = count_params(load(save_onnx(model, tmp_path / "concat.onnx")))
    assert report.quantization.params == 6
    assert report.constants.params == 0 and report.totals.params == 0


@pytest.fixture()
def masked(tmp_path):
    nodes = [helper.make_node("Mul", ["x", "s"], ["h"]), helper.make_node("Mul", ["h", "w"], ["y"])]
    return _load(tmp_path, nodes, [X], [Y], [_t("s", 0.125), _t("w", np.ones(4))])


@pytest.mark.parametrize("fmt", ["classic", "keras3", "github"])
def test_summary_text_shows_constants_apart(masked, fmt):
    text = render(masked, fmt=fmt)
    assert "Total params: 4" in text
    assert "Constants" in text and "scalars, masks, ids" in text


def test_summary_json_reports_constants(masked, tmp_path):
    totals = json.loads(render(masked, fmt="json"))["totals"]
    assert (totals["params"], totals["constants"], totals["constants_bytes"]) == (4, 1, 4)
    nodes = [helper.make_node("Mul", ["x", "w"], ["y"])]
    plain = _load(tmp_path / "p", nodes, [X], [Y], [_t("w", np.ones(4))])
    assert "constants" not in json.loads(render(plain, fmt="json"))["totals"]
    assert "Constants" not in render(plain)
