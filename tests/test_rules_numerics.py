"""NUM rules: non-finite weights, float16 overflow, log(softmax), loss/activation mismatch."""

from __future__ import annotations

import numpy as np
from onnx import helper

from helpers.keras_models import keras_file
from helpers.lint import hits, lint_path
from helpers.onnx_models import onnx_file, onnx_model, tensor, value_info

COVERED = {
    "NUM001": ("test_num001_nan_and_inf_weights", "test_num001_near_miss"),
    "NUM002": ("test_num002_float16_overflow", "test_num002_near_misses"),
    "NUM003": ("test_num003_log_of_softmax", "test_num003_near_misses"),
    "NUM004": ("test_num004_loss_activation_mismatch", "test_num004_near_misses"),
}


def _mlp(*, dtype=None, kernel_value=None, nan=False):
    def build():
        import keras
        from keras import layers

        inp = keras.Input((8,))
        x = layers.Dense(16, activation="relu", name="fc", dtype=dtype)(inp)
        model = keras.Model(inp, layers.Dense(2, name="out")(x))
        k, b = model.get_layer("fc").get_weights()
        if kernel_value is not None:
            k[0, 0] = kernel_value
        if nan:
            k[1, 2] = np.nan
            b[3] = np.inf
        model.get_layer("fc").set_weights([k, b])
        return model

    return build


def test_num001_nan_and_inf_weights():
    findings = hits(lint_path(keras_file("nan_weights", _mlp(nan=True))), "NUM001")
    assert sorted(f.message.split(" has ")[1][:24] for f in findings) == ["0 NaN and 1 infinite val",
                                                                          "1 NaN and 0 infinite val"]
    assert {f.layer for f in findings} == {"fc"} and all(f.severity.value == "error" for f in findings)

    def onnx_inf():
        w = np.ones((4, 2), np.float32)
        w[1, 1] = -np.inf
        nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
        return onnx_model(nodes, [value_info("x", [1, 4])], [value_info("y", [1, 2])], [tensor("w", w)])

    [f] = hits(lint_path(onnx_file("inf_matmul", onnx_inf)), "NUM001")
    assert f.layer == "mm" and "1 infinite" in f.message


def test_num001_near_miss():
    assert not hits(lint_path(keras_file("plain_mlp", _mlp())), "NUM001")


def test_num002_float16_overflow():
    [f] = hits(lint_path(keras_file("fp16_big", _mlp(dtype="mixed_float16", kernel_value=1e5))), "NUM002")
    assert f.layer == "fc" and "mixed_float16" in f.message and "1 value(s)" in f.message


def test_num002_near_misses():
    # the same value under a float32 policy is fine; a float16 policy with ordinary weights too
    assert not hits(lint_path(keras_file("fp32_big", _mlp(kernel_value=1e5))), "NUM002")
    assert not hits(lint_path(keras_file("fp16_ok", _mlp(dtype="mixed_float16"))), "NUM002")


def _log_softmax(stable: bool):
    def build():
        import keras
        from keras import layers, ops

        inp = keras.Input((8,))
        x = layers.Dense(4, name="logits")(inp)
        if stable:
            y = layers.Activation("log_softmax", name="log_probs")(x)
        else:
            y = ops.log(layers.Softmax(name="probs")(x))
        return keras.Model(inp, y)

    return build


def test_num003_log_of_softmax():
    [f] = hits(lint_path(keras_file("log_softmax_bad", _log_softmax(False))), "NUM003")
    assert "'probs'" in f.message and f.severity.value == "warning"

    def onnx_log():
        nodes = [helper.make_node("Softmax", ["x"], ["p"], name="softmax", axis=-1),
                 helper.make_node("Log", ["p"], ["y"], name="log")]
        return onnx_model(nodes, [value_info("x", [1, 4])], [value_info("y", [1, 4])])

    assert [f.layer for f in hits(lint_path(onnx_file("log_softmax", onnx_log)), "NUM003")] == ["log"]


def test_num003_near_misses():
    assert not hits(lint_path(keras_file("log_softmax_ok", _log_softmax(True))), "NUM003")

    def onnx_log_relu():
        nodes = [helper.make_node("Relu", ["x"], ["p"], name="relu"),
                 helper.make_node("Log", ["p"], ["y"], name="log")]
        return onnx_model(nodes, [value_info("x", [1, 4])], [value_info("y", [1, 4])])

    assert not hits(lint_path(onnx_file("log_relu", onnx_log_relu)), "NUM003")


def _compiled(act, loss):
    def build():
        import keras
        from keras import layers

        inp = keras.Input((8,))
        x = layers.Dense(16, activation="relu")(inp)
        model = keras.Model(inp, layers.Dense(5, activation=act, name="head")(x))
        model.compile(optimizer="adam", loss=loss())
        return model

    return build


def test_num004_loss_activation_mismatch():
    import keras

    double = keras_file("softmax_from_logits",
                        _compiled("softmax", lambda: keras.losses.SparseCategoricalCrossentropy(from_logits=True)))
    [f] = hits(lint_path(double), "NUM004")
    assert f.layer == "head" and f.severity.value == "error" and "from_logits=True" in f.message
    clipped = keras_file("linear_probs", _compiled(None, lambda: "sparse_categorical_crossentropy"))
    [f] = hits(lint_path(clipped), "NUM004")
    assert f.layer == "head" and "expects probabilities" in f.message


def test_num004_near_misses():
    import keras

    ok1 = keras_file("softmax_probs", _compiled("softmax", lambda: "sparse_categorical_crossentropy"))
    ok2 = keras_file("linear_logits",
                     _compiled(None, lambda: keras.losses.SparseCategoricalCrossentropy(from_logits=True)))
    ok3 = keras_file("linear_mse", _compiled(None, lambda: "mse"))
    for path in (ok1, ok2, ok3):
        assert not hits(lint_path(path), "NUM004"), path
