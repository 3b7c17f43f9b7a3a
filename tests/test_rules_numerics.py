"""NUM rules: non-finite weights, float16 overflow, log(softmax), loss/activation mismatch."""

from __future__ import annotations

import numpy as np
from onnx import helper

from helpers.keras_models import keras_file
from helpers.lint import hits, lint_path
from helpers.onnx_models import onnx_file, onnx_model, tensor, value_info

COVERED = {
    "NUM001": ("test_num001_nan_and_inf_weights", "test_num001_near_miss",
               "test_num001_infinite_values_that_are_not_masks", "test_num001_attention_masks_and_bounds"),
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
    # an infinite value alone makes outputs infinite, NaN only where it meets a zero or its opposite
    assert "outputs depending on it are infinite" in f.message and "is NaN" not in f.message


def test_num001_near_miss():
    assert not hits(lint_path(keras_file("plain_mlp", _mlp())), "NUM001")


def _attention(*, fill=-np.inf, stored_mask=None, bias=None, sink="Softmax", clamp=False):
    """A TorchScript-style attention score path: ``scores = x @ w`` then, by the arguments,
    ``Where(mask, 0, fill)`` (Constant nodes) added to the scores, a stored additive ``stored_mask``,
    a stored ``bias``, ``Max(·, -inf)`` as a clamp; then ``sink`` (Softmax or Relu)."""
    def build():
        from onnx import TensorProto

        rng = np.random.default_rng(0)
        nodes = [helper.make_node("MatMul", ["x", "w"], ["s0"], name="scores")]
        inits = [tensor("w", rng.standard_normal((4, 4)).astype(np.float32))]
        inputs = [value_info("x", [1, 4, 4])]
        cur = "s0"
        if fill is not None:
            inputs.append(value_info("mask", [1, 4, 4], TensorProto.BOOL))
            nodes += [helper.make_node("Constant", [], ["zero"], value=tensor("zero_v", np.array(0, np.float32))),
                      helper.make_node("Constant", [], ["fill"], value=tensor("fill_v", np.array(fill, np.float32))),
                      helper.make_node("Where", ["mask", "zero", "fill"], ["m"], name="masked_fill"),
                      helper.make_node("Add", [cur, "m"], ["s1"], name="add_mask")]
            cur = "s1"
        for name, value in (("causal", stored_mask), ("bias", bias)):
            if value is not None:
                inits.append(tensor(name, value))
                nodes.append(helper.make_node("Add", [cur, name], [f"{cur}_{name}"], name=f"add_{name}"))
                cur = f"{cur}_{name}"
        if clamp:
            inits.append(tensor("floor", np.array([-np.inf], np.float32)))
            nodes.append(helper.make_node("Max", [cur, "floor"], ["clamped"], name="clamp"))
            cur = "clamped"
        nodes.append(helper.make_node(sink, [cur], ["y"], name="probs"))
        return onnx_model(nodes, inputs, [value_info("y", [1, 4, 4])], inits)

    return build


def _expanded_fill():
    """``Constant(-inf) → Expand(Shape(scores)) → Where(mask, scores, ·) → Softmax``: the fill is held by Expand."""
    def build():
        from onnx import TensorProto

        nodes = [helper.make_node("MatMul", ["x", "w"], ["s0"], name="scores"),
                 helper.make_node("Shape", ["s0"], ["shape"], name="shape"),
                 helper.make_node("Constant", [], ["fill"], value=tensor("fill_v", np.array(-np.inf, np.float32))),
                 helper.make_node("Expand", ["fill", "shape"], ["fills"], name="expand"),
                 helper.make_node("Where", ["mask", "s0", "fills"], ["s1"], name="masked_fill"),
                 helper.make_node("Softmax", ["s1"], ["y"], name="probs")]
        inputs = [value_info("x", [1, 4, 4]), value_info("mask", [1, 4, 4], TensorProto.BOOL)]
        w = tensor("w", np.random.default_rng(0).standard_normal((4, 4)).astype(np.float32))
        return onnx_model(nodes, inputs, [value_info("y", [1, 4, 4])], [w])

    return build


def _row_all_masked(*, use="Equal"):
    """The ONNX ``Attention`` function's expansion: ``CastLike(-inf, scores)`` then, by ``use``,
    ``Equal(ReduceMax(scores), ·) → Where(·, 0, Softmax(scores))`` (rows whose scores are all masked get
    probability 0) or ``Mul(scores, ·)`` (not a test: infinite products)."""
    def build():
        nodes = [helper.make_node("MatMul", ["x", "w"], ["s0"], name="scores"),
                 helper.make_node("Constant", [], ["ninf"], value=tensor("ninf_v", np.array([-np.inf], np.float32))),
                 helper.make_node("CastLike", ["ninf", "s0"], ["ninf_t"], name="cast_like"),
                 helper.make_node("Softmax", ["s0"], ["p"], name="probs")]
        if use == "Equal":
            nodes += [helper.make_node("ReduceMax", ["s0"], ["row_max"], name="row_max", axes=[-1]),
                      helper.make_node("Equal", ["row_max", "ninf_t"], ["all_masked"], name="all_masked"),
                      helper.make_node("Constant", [], ["zero"], value=tensor("zero_v", np.array(0, np.float32))),
                      helper.make_node("Where", ["all_masked", "zero", "p"], ["y"], name="safe_probs")]
        else:
            nodes.append(helper.make_node("Mul", ["p", "ninf_t"], ["y"], name="scaled"))
        w = tensor("w", np.random.default_rng(0).standard_normal((4, 4)).astype(np.float32))
        return onnx_model(nodes, [value_info("x", [1, 4, 4])], [value_info("y", [1, 4, 4])], [w])

    return build


CAUSAL = np.triu(np.full((4, 4), -np.inf, np.float32), k=1)


def test_num001_attention_masks_and_bounds():
    # issue 12: infinite constants used as a mask fill or a bound are deliberate
    for key, build in (("where_mask", _attention()), ("stored_causal", _attention(fill=None, stored_mask=CAUSAL)),
                       ("max_floor", _attention(fill=None, clamp=True, sink="Relu")),
                       ("both_masks", _attention(stored_mask=CAUSAL)), ("expanded_fill", _expanded_fill()),
                       ("row_all_masked", _row_all_masked())):
        findings = lint_path(onnx_file(f"num001_{key}", build))
        assert not hits(findings, "NUM001"), key
        assert not [f for f in findings if f.severity.value == "error"], key


def test_num001_infinite_values_that_are_not_masks():
    # a NaN fill is never deliberate
    [f] = hits(lint_path(onnx_file("num001_nan_fill", _attention(fill=np.nan))), "NUM001")
    assert f.layer == "masked_fill" and "1 NaN" in f.message
    # a diverged bias (finite values next to an inf) is not a mask, even before a softmax
    bias = np.linspace(-1, 1, 4, dtype=np.float32)
    bias[2] = -np.inf
    [f] = hits(lint_path(onnx_file("num001_inf_bias", _attention(fill=None, bias=bias))), "NUM001")
    assert f.layer == "add_bias" and f.severity.value == "error"
    # a 0/-inf tensor added to values that no softmax (or max) consumes is not masking anything
    [f] = hits(lint_path(onnx_file("num001_mask_no_softmax", _attention(fill=None, stored_mask=CAUSAL,
                                                                        sink="Relu"))), "NUM001")
    assert f.layer == "add_causal" and "6 infinite" in f.message
    # a cast hands the constant on: multiplying by it is no test and no mask
    [f] = hits(lint_path(onnx_file("num001_cast_then_mul", _row_all_masked(use="Mul"))), "NUM001")
    assert f.layer == "cast_like"


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
