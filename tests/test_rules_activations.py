"""ACT rules: saturating activations, stacks of them, missing and doubled non-linearities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from onnx import helper

from helpers.keras_models import keras_file
from helpers.lint import hits, lint_path, problems
from helpers.onnx_models import onnx_file, onnx_model, tensor, value_info

COVERED = {
    "ACT001": ("test_act001_hidden_sigmoid", "test_act001_gates_outputs_and_cells_are_fine"),
    "ACT002": ("test_act002_deep_sigmoid_stack", "test_act002_near_misses"),
    "ACT005": ("test_act005_linear_dense_stack", "test_act005_near_misses", "test_act005_linear_spatial_convs",
               "test_act005_factorizations_are_deliberate"),
    "ACT006": ("test_act006_double_activation", "test_act006_near_misses"),
}


def _dense_stack(acts, *, bn: bool = False, out_act=None):
    def build():
        import keras
        from keras import layers

        inp = keras.Input((16,))
        x = inp
        for i, act in enumerate(acts):
            x = layers.Dense(32, activation=act, name=f"h{i}")(x)
            if bn:
                x = layers.BatchNormalization(name=f"bn{i}")(x)
        return keras.Model(inp, layers.Dense(3, activation=out_act, name="out")(x))

    return build


def test_act001_hidden_sigmoid():
    findings = lint_path(keras_file("one_sigmoid", _dense_stack(["relu", "sigmoid"])))
    [f] = hits(findings, "ACT001")
    assert f.layer == "h1" and "'out'" in f.message and f.severity.value == "warning"

    def onnx_sigmoid():
        rng = np.random.default_rng(0)
        nodes = [helper.make_node("Gemm", ["x", "w1"], ["h"], name="fc1"),
                 helper.make_node("Sigmoid", ["h"], ["s"], name="sig"),
                 helper.make_node("Gemm", ["s", "w2"], ["y"], name="fc2")]
        return onnx_model(nodes, [value_info("x", [1, 8])], [value_info("y", [1, 4])],
                          [tensor("w1", rng.standard_normal((8, 16)).astype(np.float32)),
                           tensor("w2", rng.standard_normal((16, 4)).astype(np.float32))])

    assert [f.layer for f in hits(lint_path(onnx_file("sigmoid_trunk", onnx_sigmoid)), "ACT001")] == ["sig"]


def _se_and_swish():
    import keras
    from keras import layers

    inp = keras.Input((16, 16, 8))
    x = layers.Conv2D(8, 3, padding="same", name="conv")(inp)
    # swish = x * sigmoid(x)
    s = layers.Activation("sigmoid", name="swish_gate")(x)
    x = layers.Multiply(name="swish")([x, s])
    # squeeze-and-excitation
    se = layers.GlobalAveragePooling2D()(x)
    se = layers.Dense(4, activation="relu", name="se_reduce")(se)
    se = layers.Dense(8, activation="sigmoid", name="se_expand")(se)
    se = layers.Reshape((1, 1, 8))(se)
    x = layers.Multiply(name="se_scale")([x, se])
    x = layers.Conv2D(8, 1, activation="relu", name="after")(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, layers.Dense(1, activation="sigmoid", name="prob")(x))


def _lstm():
    import keras
    from keras import layers

    inp = keras.Input((10, 4))
    x = layers.LSTM(8, name="lstm")(inp)
    x = layers.Dense(8, activation="tanh", name="cls_tanh")(x)
    return keras.Model(inp, x)


def test_act001_gates_outputs_and_cells_are_fine():
    findings = lint_path(keras_file("se_swish", _se_and_swish))
    assert not hits(findings, "ACT001"), findings
    assert not problems(findings)
    # LSTM's sigmoid/tanh are internal; a tanh output is an output
    assert not hits(lint_path(keras_file("lstm", _lstm)), "ACT001")

    def onnx_gate():
        rng = np.random.default_rng(0)
        nodes = [helper.make_node("Gemm", ["x", "w1"], ["h"], name="fc1"),
                 helper.make_node("Sigmoid", ["h"], ["s"], name="sig"),
                 helper.make_node("Mul", ["h", "s"], ["g"], name="silu"),
                 helper.make_node("Gemm", ["g", "w2"], ["y"], name="fc2")]
        return onnx_model(nodes, [value_info("x", [1, 8])], [value_info("y", [1, 4])],
                          [tensor("w1", rng.standard_normal((8, 16)).astype(np.float32)),
                           tensor("w2", rng.standard_normal((16, 4)).astype(np.float32))])

    assert not hits(lint_path(onnx_file("silu_gate", onnx_gate)), "ACT001")


def test_act002_deep_sigmoid_stack():
    findings = lint_path(keras_file("deep_sigmoid", _dense_stack(["sigmoid"] * 5)))
    [f] = hits(findings, "ACT002")
    assert f.layer == "h4" and f.message.startswith("5 saturating activations (sigmoid)")
    # reported once, as a stack: no ACT001 per layer on top
    assert not hits(findings, "ACT001")
    # with ACT002 off, each hidden sigmoid is reported on its own
    assert len(hits(lint_path(keras_file("deep_sigmoid", _dense_stack(["sigmoid"] * 5)),
                              ignore=["ACT002"]), "ACT001")) == 5


def test_act002_near_misses():
    # normalization between the layers breaks the stack; two layers are below min-depth
    findings = lint_path(keras_file("tanh_bn", _dense_stack(["tanh"] * 4, bn=True)))
    assert not hits(findings, "ACT002") and len(hits(findings, "ACT001")) == 4
    findings = lint_path(keras_file("two_tanh", _dense_stack(["tanh", "tanh"])))
    assert not hits(findings, "ACT002") and len(hits(findings, "ACT001")) == 2


def test_act005_linear_dense_stack():
    findings = lint_path(keras_file("linear_stack", _dense_stack([None], out_act="softmax")))
    [f] = hits(findings, "ACT005")
    assert f.layer == "h0" and "'out'" in f.message and "16x3" in f.message

    def onnx_gemms():
        rng = np.random.default_rng(0)
        nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1"),
                 helper.make_node("Gemm", ["h", "w2"], ["y"], name="fc2")]
        return onnx_model(nodes, [value_info("x", [1, 8])], [value_info("y", [1, 4])],
                          [tensor("w1", rng.standard_normal((8, 16)).astype(np.float32)),
                           tensor("b1", np.zeros(16, np.float32)),
                           tensor("w2", rng.standard_normal((16, 4)).astype(np.float32))])

    assert [f.layer for f in hits(lint_path(onnx_file("gemm_gemm", onnx_gemms)), "ACT005")] == ["fc1"]


def _bottleneck_and_residual():
    import keras
    from keras import layers

    inp = keras.Input((64,))
    code = layers.Dense(8, name="code")(inp)               # linear bottleneck: 64 -> 8 -> 64
    x = layers.Dense(64, activation="relu", name="decode")(code)
    y = layers.Dense(64, name="proj")(x)                    # linear, feeds a residual add too
    x = layers.Add()([x, y])
    z = layers.Dense(64, name="after_add")(x)
    return keras.Model(inp, layers.Dense(4, activation="relu", name="out")(layers.Activation("relu")(z)))


def test_act005_near_misses():
    findings = lint_path(keras_file("bottleneck", _bottleneck_and_residual))
    assert not hits(findings, "ACT005"), findings
    assert not hits(lint_path(keras_file("relu_stack", _dense_stack(["relu"]))), "ACT005")


def _onnx_convs(key: str, specs, *, channels: int = 8, between=()):
    """An ONNX chain of convolutions: ``specs`` is one ``(name, filters, kernel, group)`` per Conv (no
    activation anywhere); ``between`` names the ops put between the first two (``"bn"``, ``"relu"``)."""
    def build():
        rng = np.random.default_rng(0)
        nodes, inits, cur, cin = [], [], "x", channels
        for i, (name, filters, kernel, group) in enumerate(specs):
            w = rng.standard_normal((filters, cin // group, *kernel)).astype(np.float32)
            pads = [k // 2 for k in kernel] * 2
            inits.append(tensor(f"{name}_w", w))
            nodes.append(helper.make_node("Conv", [cur, f"{name}_w"], [f"{name}_y"], name=name, group=group,
                                          pads=pads))
            cur, cin = f"{name}_y", filters
            if i == 0 and "bn" in between:
                for stat, value in (("g", 1.0), ("b", 0.0), ("m", 0.0), ("v", 1.0)):
                    inits.append(tensor(f"bn_{stat}", np.full(filters, value, np.float32)))
                nodes.append(helper.make_node("BatchNormalization", [cur, "bn_g", "bn_b", "bn_m", "bn_v"],
                                              ["bn_y"], name="bn"))
                cur = "bn_y"
            if i == 0 and "relu" in between:
                nodes.append(helper.make_node("Relu", [cur], ["relu_y"], name="relu"))
                cur = "relu_y"
        nodes.append(helper.make_node("Relu", [cur], ["y"], name="out"))
        return onnx_model(nodes, [value_info("x", [1, channels, 16, 16])],
                          [value_info("y", [1, cin, 16, 16])], inits)

    return onnx_file(key, build)


def test_act005_linear_spatial_convs():
    """Issue 12.8: two full k x k convolutions with nothing non-linear between them are one convolution."""
    def build():
        import keras
        from keras import layers

        inp = keras.Input((16, 16, 8))
        x = layers.Conv2D(16, 3, padding="same", name="conv_a")(inp)
        x = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv_b")(x)
        return keras.Model(inp, x)

    [f] = hits(lint_path(keras_file("conv3_conv3", build)), "ACT005")
    assert f.layer == "conv_a" and "3x3 convolution" in f.message and "'conv_b'" in f.message
    assert f.severity.value == "warning"
    path = _onnx_convs("conv3_conv5", [("a", 8, (3, 3), 1), ("b", 8, (5, 5), 1)])
    [f] = hits(lint_path(path), "ACT005")
    assert f.layer == "a" and "one larger convolution" in f.message


def test_act005_factorizations_are_deliberate():
    """Issue 12.6: depthwise -> pointwise, 1 x k -> k x 1, low rank, 1x1 -> k x k, norm or activation between."""
    cases = {
        "depthwise_pointwise": ([("dw", 8, (3, 3), 8), ("pw", 16, (1, 1), 1)], ()),
        "spatial_factorization": ([("row", 8, (1, 3), 1), ("col", 8, (3, 1), 1)], ()),
        "low_rank_3x3": ([("narrow", 4, (3, 3), 1), ("wide", 8, (3, 3), 1)], ()),
        "pointwise_then_conv": ([("pw", 8, (1, 1), 1), ("conv", 8, (3, 3), 1)], ()),  # PP-OCR
        "conv_then_pointwise": ([("conv", 8, (3, 3), 1), ("pw", 8, (1, 1), 1)], ()),
        "grouped_convs": ([("g1", 8, (3, 3), 2), ("g2", 8, (3, 3), 2)], ()),
        "conv_bn_conv": ([("a", 8, (3, 3), 1), ("b", 8, (3, 3), 1)], ("bn",)),
        "conv_relu_conv": ([("a", 8, (3, 3), 1), ("b", 8, (3, 3), 1)], ("relu",)),
    }
    for key, (specs, between) in cases.items():
        assert not hits(lint_path(_onnx_convs(key, specs, between=between)), "ACT005"), key

    def residual():
        import keras
        from keras import layers

        inp = keras.Input((16, 16, 8))
        x = layers.Conv2D(8, 3, padding="same", name="conv_a")(inp)   # linear, but also feeds the skip
        y = layers.Conv2D(8, 3, padding="same", name="conv_b")(x)
        return keras.Model(inp, layers.Activation("relu")(layers.Add()([x, y])))

    assert not hits(lint_path(keras_file("conv_skip_conv", residual)), "ACT005")


def test_act006_double_activation():
    def build():
        import keras
        from keras import layers

        inp = keras.Input((8,))
        x = layers.Dense(16, activation="relu", name="fc")(inp)
        x = layers.Activation("relu", name="again")(x)
        x = layers.Dense(4, activation="softmax", name="probs")(x)
        return keras.Model(inp, layers.Softmax(name="softmax_twice")(x))

    findings = lint_path(keras_file("double_act", build))
    assert sorted(f.layer for f in hits(findings, "ACT006")) == ["again", "softmax_twice"]
    assert "relu is applied on top of relu" in hits(findings, "ACT006")[0].message


def test_act006_near_misses():
    def build():
        import keras
        from keras import layers

        inp = keras.Input((8,))
        x = layers.Dense(16, name="fc")(inp)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu", name="act")(x)
        return keras.Model(inp, layers.Dense(2, name="out")(x))

    assert not hits(lint_path(keras_file("single_act", build)), "ACT006")

    def mish():  # x * tanh(softplus(x)): two activations that form one
        rng = np.random.default_rng(0)
        nodes = [helper.make_node("Gemm", ["x", "w1"], ["h"], name="fc1"),
                 helper.make_node("Softplus", ["h"], ["sp"], name="softplus"),
                 helper.make_node("Tanh", ["sp"], ["t"], name="tanh"),
                 helper.make_node("Mul", ["h", "t"], ["m"], name="mish"),
                 helper.make_node("Gemm", ["m", "w2"], ["y"], name="fc2")]
        return onnx_model(nodes, [value_info("x", [1, 8])], [value_info("y", [1, 4])],
                          [tensor("w1", rng.standard_normal((8, 16)).astype(np.float32)),
                           tensor("w2", rng.standard_normal((16, 4)).astype(np.float32))])

    findings = lint_path(onnx_file("mish", mish))
    assert not hits(findings, "ACT006") and not hits(findings, "ACT001")


def test_malformed_activation_configs_do_not_crash_rules(tmp_path, cli):
    """A damaged config (a fuzzer's find): strings where numbers belong are data, not crashes."""
    import json
    import zipfile

    sample = Path(__file__).resolve().parents[1] / "samples" / "seed_cnn.keras"
    src = zipfile.ZipFile(sample)
    cfg = json.loads(src.read("config.json"))
    for entry in cfg["config"]["layers"]:
        if entry["class_name"] == "ReLU":
            entry["config"]["max_value"] = "x"
        if entry["class_name"] == "Conv2D":
            entry["config"]["kernel_initializer"] = {"class_name": "Constant", "config": {"value": ["a", "a"]}}
    bad = tmp_path / "bad.keras"
    with zipfile.ZipFile(bad, "w") as out:
        for info in src.infolist():
            out.writestr(info, json.dumps(cfg) if info.filename == "config.json" else src.read(info.filename))
    assert cli("lint", bad).code in (0, 1)
