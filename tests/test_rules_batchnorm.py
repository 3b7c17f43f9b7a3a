"""BN rules: epsilon, moving variance, bias before BN, BN after activation, stale
statistics in trained models, training-mode BN in exported graphs."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

from helpers.keras_models import keras_file
from helpers.lint import hits, lint_path, problems
from helpers.onnx_models import onnx_file, onnx_model, tensor, value_info

COVERED = {
    "BN001": ("test_bn001_epsilon_zero", "test_bn001_near_misses"),
    "BN002": ("test_bn002_bad_moving_variance", "test_bn002_near_miss"),
    "BN003": ("test_bn003_bias_before_bn", "test_bn003_near_misses"),
    "BN004": ("test_bn004_bn_after_relu", "test_bn004_near_miss"),
    "BN005": ("test_bn005_frozen_bn_in_trained_model", "test_bn005_near_misses"),
    "BN006": ("test_bn006_training_mode_onnx", "test_bn006_near_miss", "test_bn006_keras_call_kwargs_interface"),
    "BN007": ("test_bn007_layer_norm_epsilon", "test_bn007_near_misses"),
}


def _cnn(*, eps: float = 1e-3, use_bias: bool = False, act_before_bn: bool = False):
    def build():
        import keras
        from keras import layers

        inp = keras.Input((12, 12, 3))
        x = layers.Rescaling(1 / 255)(inp)
        if act_before_bn:
            x = layers.Conv2D(8, 3, activation="relu", name="conv")(x)
        else:
            x = layers.Conv2D(8, 3, use_bias=use_bias, name="conv")(x)
        x = layers.BatchNormalization(epsilon=eps, name="bn")(x)
        if not act_before_bn:
            x = layers.ReLU(name="relu")(x)
        x = layers.GlobalAveragePooling2D()(x)
        return keras.Model(inp, layers.Dense(2, name="out")(x))

    return build


def _onnx_bn(key: str, *, eps: float = 1e-5, dtype=np.float32, training_mode: int | None = None,
             var: np.ndarray | None = None, opset: int = 15):
    def build():
        elem = TensorProto.FLOAT16 if dtype == np.float16 else TensorProto.FLOAT
        attrs = {"epsilon": eps}
        if training_mode is not None:
            attrs["training_mode"] = training_mode
        nodes = [helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], name="bn", **attrs)]
        v = var if var is not None else np.ones(4)
        inits = [tensor("s", np.ones(4, dtype)), tensor("b", np.zeros(4, dtype)),
                 tensor("m", np.full(4, 0.1, dtype)), tensor("v", v.astype(dtype))]
        return onnx_model(nodes, [value_info("x", [1, 4, 8, 8], elem)], [value_info("y", [1, 4, 8, 8], elem)],
                          inits, opset=opset)

    return onnx_file(key, build)


def test_bn001_epsilon_zero():
    [f] = hits(lint_path(keras_file("bn_eps0", _cnn(eps=0.0))), "BN001")
    assert f.layer == "bn" and f.severity.value == "error" and "epsilon is 0" in f.message
    [f] = hits(lint_path(_onnx_bn("bn_eps_neg", eps=-1e-5)), "BN001")
    assert f.severity.value == "error"
    # float16 arithmetic: 1e-5 is below the smallest normal float16 (6.1e-05)
    [f] = hits(lint_path(_onnx_bn("bn_fp16", eps=1e-5, dtype=np.float16)), "BN001")
    assert f.severity.value == "warning" and "float16" in f.message


def test_bn001_near_misses():
    assert not hits(lint_path(keras_file("bn_default", _cnn())), "BN001")
    assert not hits(lint_path(_onnx_bn("bn_fp32", eps=1e-5)), "BN001")  # fine in float32
    assert not hits(lint_path(_onnx_bn("bn_fp16_ok", eps=1e-3, dtype=np.float16)), "BN001")


def test_bn002_bad_moving_variance():
    [f] = hits(lint_path(_onnx_bn("bn_var_neg", var=np.array([1.0, -0.5, 1.0, 1.0]))), "BN002")
    assert f.severity.value == "error" and "negative" in f.message
    [f] = hits(lint_path(_onnx_bn("bn_var_nan", var=np.array([1.0, np.nan, 1.0, 1.0]))), "BN002")
    assert f.severity.value == "error" and "1 NaN" in f.message

    def zero_var():
        model = _cnn()()
        bn = model.get_layer("bn")
        g, b, m, v = bn.get_weights()
        v[[2, 5]] = 0.0
        bn.set_weights([g, b, m, v])
        return model

    [f] = hits(lint_path(keras_file("bn_var_zero", zero_var)), "BN002")
    assert f.severity.value == "warning" and "2 of 8 channel(s)" in f.message


def test_bn002_near_miss():
    assert not hits(lint_path(keras_file("bn_default", _cnn())), "BN002")
    assert not hits(lint_path(_onnx_bn("bn_fp32", eps=1e-5)), "BN002")


def test_bn003_bias_before_bn():
    findings = lint_path(keras_file("bn_bias", _cnn(use_bias=True)))
    [f] = hits(findings, "BN003")
    assert f.layer == "conv" and f.severity.value == "info" and "'bn'" in f.message and "(8 values)" in f.message


def test_bn003_near_misses():
    assert not hits(lint_path(keras_file("bn_default", _cnn())), "BN003")
    # an activation between: not a wasted bias (BN004's business instead)
    assert not hits(lint_path(keras_file("bn_after_relu", _cnn(act_before_bn=True))), "BN003")


def test_bn004_bn_after_relu():
    [f] = hits(lint_path(keras_file("bn_after_relu", _cnn(act_before_bn=True))), "BN004")
    assert f.layer == "bn" and f.severity.value == "info" and "relu" in f.message


def test_bn004_near_miss():
    assert not hits(lint_path(keras_file("bn_default", _cnn())), "BN004")


def _trained(freeze: bool):
    def build():
        import keras
        from keras import layers

        inp = keras.Input((8,))
        x = layers.Dense(16, name="fc1")(inp)
        bn1 = layers.BatchNormalization(name="bn1")
        x = layers.ReLU()(bn1(x))
        x = layers.Dense(16, name="fc2")(x)
        bn2 = layers.BatchNormalization(name="bn2")
        x = layers.ReLU()(bn2(x))
        model = keras.Model(inp, layers.Dense(1, name="out")(x))
        if freeze:
            bn2.trainable = False  # frozen before the first step: statistics never move
        model.compile(optimizer="adam", loss="mse")
        rng = np.random.default_rng(0)
        model.fit(rng.standard_normal((64, 8)), rng.standard_normal((64, 1)), epochs=2, batch_size=16, verbose=0)
        return model

    return build


def test_bn005_frozen_bn_in_trained_model():
    findings = lint_path(keras_file("bn_frozen", _trained(True)))
    assert [f.layer for f in hits(findings, "BN005")] == ["bn2"]
    assert "model looks trained" in hits(findings, "MODEL001")[0].message


def test_bn005_near_misses():
    # trained with every BN updating; untrained models are skipped (0/1 is right there)
    assert not hits(lint_path(keras_file("bn_trained", _trained(False))), "BN005")
    findings = lint_path(keras_file("bn_default", _cnn()))
    assert not hits(findings, "BN005")
    assert "model looks untrained" in hits(findings, "MODEL001")[0].message


def test_bn006_training_mode_onnx():
    [f] = hits(lint_path(_onnx_bn("bn_training", training_mode=1)), "BN006")
    assert f.layer == "bn" and f.severity.value == "warning"


def test_bn006_near_miss():
    assert not hits(lint_path(_onnx_bn("bn_inference", training_mode=0)), "BN006")
    assert not problems(lint_path(_onnx_bn("bn_fp32", eps=1e-5)))


def test_bn006_keras_call_kwargs_interface():
    # Keras files record `bn(x, training=True)` in the call's kwargs; loaders expose them as
    # config["@call_kwargs"] (one dict per call).  Built directly as a graph: the interface itself.
    from inspector.ir import Inbound, Layer, ModelGraph
    from inspector.rules import lint

    def graph(training):
        layers = [Layer("x", "InputLayer", inbound=[[]], node_shapes=[[(None, 4)]]),
                  Layer("bn", "BatchNormalization", config={"epsilon": 1e-3, "@call_kwargs": [{"training": training}]},
                        inbound=[[Inbound("x")]], node_shapes=[[(None, 4)]])]
        return ModelGraph("m", "keras", layers=layers, inputs=[Inbound("x")], outputs=[Inbound("bn")])

    assert [f.layer for f in hits(lint(graph(True), select=["BN006"]), "BN006")] == ["bn"]
    assert not hits(lint(graph(None), select=["BN006"]), "BN006")


def test_bn003_reports_a_model_wide_habit_once():
    def build():
        import keras

        inp = keras.Input((16, 16, 3))
        x = inp
        for i in range(4):
            x = keras.layers.Conv2D(4, 3, padding="same", name=f"conv{i}")(x)
            x = keras.layers.BatchNormalization(name=f"bn{i}")(x)
            x = keras.layers.ReLU()(x)
        return keras.Model(inp, x)

    [f] = hits(lint_path(keras_file("bn_bias_many", build)), "BN003")
    assert f.layer == "conv0"
    assert f.message.startswith("4 layers ('conv0', 'conv1', 'conv2', …)") and "16 wasted parameters" in f.message


def _keras_norms(**eps):
    """LayerNormalization, RMSNormalization and GroupNormalization with the given epsilons."""
    def build():
        import keras
        from keras import layers

        inp = keras.Input((8, 16))
        x = layers.LayerNormalization(name="ln", **({"epsilon": eps["ln"]} if "ln" in eps else {}))(inp)
        x = layers.RMSNormalization(name="rms", **({"epsilon": eps["rms"]} if "rms" in eps else {}))(x)
        x = layers.GroupNormalization(4, name="gn", **({"epsilon": eps["gn"]} if "gn" in eps else {}))(x)
        return keras.Model(inp, layers.Dense(2, activation="relu", name="out")(x))

    return build


def _decomposed_rms(key: str, eps: float, dtype: int = TensorProto.FLOAT, *, sqrt: bool = True):
    """ONNX RMSNorm as exporters write it: Pow(x, 2) -> ReduceMean -> Add(eps) -> Sqrt -> Div."""
    def build():
        np_dtype = helper.tensor_dtype_to_np_dtype(dtype)
        nodes = [helper.make_node("Pow", ["x", "two"], ["sq"], name="pow"),
                 helper.make_node("ReduceMean", ["sq"], ["ms"], name="mean", axes=[-1], keepdims=1),
                 helper.make_node("Add", ["ms", "eps"], ["mse"], name="add_eps")]
        if sqrt:
            nodes += [helper.make_node("Sqrt", ["mse"], ["rms"], name="sqrt"),
                      helper.make_node("Div", ["x", "rms"], ["y"], name="div")]
        else:  # the same Add feeding something else: not a normalization epsilon
            nodes += [helper.make_node("Mul", ["x", "mse"], ["y"], name="mul")]
        return onnx_model(nodes, [value_info("x", [1, 8, 16], dtype)], [value_info("y", [1, 8, 16], dtype)],
                          [tensor("two", np.array(2.0, np_dtype)), tensor("eps", np.array(eps, np_dtype))],
                          opset=17)

    return onnx_file(key, build)


def test_bn007_layer_norm_epsilon():
    """Issue 12.9: LayerNorm / RMSNorm / GroupNorm epsilon <= 0, or too small for float16 statistics."""
    findings = lint_path(keras_file("norms_eps0", _keras_norms(ln=0.0, rms=-1e-6, gn=0.0)))
    got = {f.layer: f for f in hits(findings, "BN007")}
    assert set(got) == {"ln", "rms", "gn"} and all(f.severity.value == "error" for f in got.values())
    assert "divides 0 by 0" in got["ln"].message

    def onnx_layernorm():
        nodes = [helper.make_node("LayerNormalization", ["x", "g", "b"], ["y"], name="ln", epsilon=0.0,
                                  axis=-1)]
        return onnx_model(nodes, [value_info("x", [1, 8, 16])], [value_info("y", [1, 8, 16])],
                          [tensor("g", np.ones(16, np.float32)), tensor("b", np.zeros(16, np.float32))])

    [f] = hits(lint_path(onnx_file("layernorm_eps0", onnx_layernorm)), "BN007")
    assert f.layer == "ln" and f.severity.value == "error"
    [f] = hits(lint_path(_decomposed_rms("rms_eps0", 0.0)), "BN007")
    assert f.layer == "add_eps" and f.severity.value == "error" and "decomposed" in f.message
    [f] = hits(lint_path(_decomposed_rms("rms_fp16_eps1e-6", 1e-6, TensorProto.FLOAT16)), "BN007")
    assert f.severity.value == "warning" and "float16" in f.message


def test_bn007_near_misses():
    # Keras defaults (1e-3, 1e-6, 1e-3): RMSNorm's 1e-6 is fine, Keras computes the statistics in float32
    assert not hits(lint_path(keras_file("norms_default", _keras_norms())), "BN007")
    assert not hits(lint_path(_decomposed_rms("rms_eps1e-6", 1e-6)), "BN007")                # float32
    assert not hits(lint_path(_decomposed_rms("rms_fp16_eps1e-5", 1e-5, TensorProto.FLOAT16)), "BN007")
    assert not hits(lint_path(_decomposed_rms("add_not_eps", 0.0, sqrt=False)), "BN007")   # no Sqrt after it
