"""INIT rules: symmetric initialization, constant kernels, duplicate units, initial scale."""

from __future__ import annotations

import numpy as np
from onnx import helper

from helpers.keras_models import keras_file
from helpers.lint import hits, lint_path, problems
from helpers.onnx_models import onnx_file, onnx_model, tensor, value_info

COVERED = {
    "INIT001": ("test_init001_zeros_initializer_in_config", "test_init001_near_misses"),
    "INIT002": ("test_init002_zero_kernels", "test_init002_near_misses",
                "test_init002_zero_kernel_on_the_trunk", "test_init002_zero_init_residual_branches"),
    "INIT003": ("test_init003_duplicate_units", "test_init003_near_misses"),
    "INIT004": ("test_init004_random_normal_std_one", "test_init004_near_misses"),
}


def _mlp(init: str = "glorot_uniform", *, out_init: str = "glorot_uniform", units: int = 64):
    import keras
    from keras import layers

    return keras.Sequential([keras.Input((32,)),
                             layers.Dense(units, activation="relu", kernel_initializer=init, name="hidden"),
                             layers.Dense(10, kernel_initializer=out_init, name="out")])


def zero_mlp():
    return keras_file("zero_mlp", lambda: _mlp("zeros"))


def test_init002_zero_kernels():
    findings = lint_path(zero_mlp())
    [f] = hits(findings, "INIT002")
    assert f.layer == "hidden" and f.severity.value == "error"
    assert "Zeros" in f.message and "64 units" in f.message
    # one problem, one finding: INIT001 does not repeat what INIT002 says
    assert not hits(findings, "INIT001")

    def onnx_constant():
        x = value_info("x", [1, 8])
        y = value_info("y", [1, 4])
        w1 = tensor("w1", np.full((8, 16), 0.5, np.float32))
        w2 = tensor("w2", np.random.default_rng(0).standard_normal((16, 4)).astype(np.float32))
        nodes = [helper.make_node("Gemm", ["x", "w1"], ["h"], name="fc1"),
                 helper.make_node("Relu", ["h"], ["r"], name="relu"),
                 helper.make_node("Gemm", ["r", "w2"], ["y"], name="fc2")]
        return onnx_model(nodes, [x], [y], [w1, w2])

    findings = lint_path(onnx_file("const_gemm", onnx_constant))
    assert [f.layer for f in hits(findings, "INIT002")] == ["fc1"]
    assert "0.5" in hits(findings, "INIT002")[0].message


def test_init002_near_misses():
    # the output layer may start at zero (each unit gets its own error signal);
    # biases, BN gamma/beta and moving statistics are constant by design.
    import keras
    from keras import layers

    def build():
        return keras.Sequential([keras.Input((16, 16, 3)), layers.Conv2D(8, 3, name="conv"),
                                 layers.BatchNormalization(name="bn"), layers.ReLU(),
                                 layers.Flatten(), layers.Dense(1, kernel_initializer="zeros", name="head")])

    findings = lint_path(keras_file("zero_head_cnn", build))
    assert not hits(findings, "INIT002") and not hits(findings, "INIT001")
    assert not problems(findings)


def _block(*, skip: str = "x", extra_use: bool = False, residual: bool = True):
    """A timm-style ResNet block exported with its zero-initialized last BatchNorm folded into an
    all-zero convolution: ``x → conv1 → relu → conv2 (zeros) → Add(skip) → relu → head``.
    ``skip="other"`` adds a second input instead of ``x`` (no path around conv2);
    ``extra_use`` also feeds conv2 to another conv; ``residual=False`` drops the Add."""
    def build():
        rng = np.random.default_rng(0)

        def conv(name, src, out, w):
            return helper.make_node("Conv", [src, w, f"{w}_b"], [out], name=name, pads=[1, 1, 1, 1])

        def weights(name, zero=False):
            k = np.zeros((4, 4, 3, 3), np.float32) if zero else rng.standard_normal((4, 4, 3, 3)).astype(np.float32)
            return [tensor(name, k * 0.2), tensor(f"{name}_b", np.zeros(4, np.float32))]

        inputs = [value_info("x", [1, 4, 8, 8])]
        nodes = [conv("conv1", "x", "a", "w1"), helper.make_node("Relu", ["a"], ["r"], name="relu1"),
                 conv("conv2", "r", "z", "w2")]
        if skip == "other":
            inputs.append(value_info("other", [1, 4, 8, 8]))
        if residual:
            nodes.append(helper.make_node("Add", ["z", skip], ["s"], name="residual_add"))
        else:
            nodes.append(helper.make_node("Identity", ["z"], ["s"], name="no_skip"))
        nodes += [helper.make_node("Relu", ["s"], ["r2"], name="relu2"), conv("head", "r2", "y0", "w3")]
        out = "y0"
        if extra_use:
            nodes += [conv("side", "z", "side_out", "w4"), helper.make_node("Add", ["y0", "side_out"], ["y1"])]
            out = "y1"
        nodes.append(helper.make_node("Identity", [out], ["y"], name="out"))
        inits = weights("w1") + weights("w2", zero=True) + weights("w3") + weights("w4")
        return onnx_model(nodes, inputs, [value_info("y", [1, 4, 8, 8])], inits if extra_use else inits[:6])

    return build


def _lora(*, residual: bool = True):
    """A LoRA adapter: ``x @ W + (x @ A) @ B * scale`` with B all zeros, as initialized."""
    def build():
        rng = np.random.default_rng(0)
        nodes = [helper.make_node("MatMul", ["x", "W"], ["base"], name="base"),
                 helper.make_node("MatMul", ["x", "A"], ["down"], name="lora_A"),
                 helper.make_node("MatMul", ["down", "B"], ["up"], name="lora_B"),
                 helper.make_node("Mul", ["up", "scale"], ["scaled"], name="lora_scale")]
        nodes.append(helper.make_node("Add", ["base", "scaled"], ["h"], name="merge") if residual else
                     helper.make_node("Relu", ["scaled"], ["h"], name="act"))
        nodes.append(helper.make_node("MatMul", ["h", "W2"], ["y"], name="next"))
        inits = [tensor("W", rng.standard_normal((16, 16)).astype(np.float32) * 0.25),
                 tensor("A", rng.standard_normal((16, 4)).astype(np.float32) * 0.25),
                 tensor("B", np.zeros((4, 16), np.float32)), tensor("scale", np.array(2.0, np.float32)),
                 tensor("W2", rng.standard_normal((16, 8)).astype(np.float32) * 0.25)]
        return onnx_model(nodes, [value_info("x", [1, 16])], [value_info("y", [1, 8])], inits)

    return build


def _adaln_zero():
    """DiT's adaLN-zero: a gate computed from the conditioning ``c`` by an all-zero projection
    multiplies the branch ``x @ W`` before the residual sum ``x + gate * branch``."""
    def build():
        rng = np.random.default_rng(0)
        nodes = [helper.make_node("MatMul", ["c", "Wz"], ["gate"], name="ada_gate"),
                 helper.make_node("MatMul", ["x", "W"], ["h"], name="branch"),
                 helper.make_node("Mul", ["h", "gate"], ["g"], name="gated"),
                 helper.make_node("Add", ["x", "g"], ["r"], name="residual"),
                 helper.make_node("MatMul", ["r", "W2"], ["y"], name="next")]
        inits = [tensor("Wz", np.zeros((16, 16), np.float32)),
                 tensor("W", rng.standard_normal((16, 16)).astype(np.float32) * 0.25),
                 tensor("W2", rng.standard_normal((16, 8)).astype(np.float32) * 0.25)]
        return onnx_model(nodes, [value_info("x", [1, 16]), value_info("c", [1, 16])], [value_info("y", [1, 8])],
                          inits)

    return build


def _keras_zero_residual():
    import keras
    from keras import layers

    inp = keras.Input((8, 8, 4))
    x = layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(inp)
    x = layers.Conv2D(4, 3, padding="same", kernel_initializer="zeros", name="conv2")(x)
    x = layers.Add(name="residual_add")([inp, x])
    x = layers.Flatten()(layers.ReLU()(x))
    return keras.Model(inp, layers.Dense(2, name="out")(x))


def test_init002_zero_init_residual_branches():
    # issue 12: an all-zero kernel whose output only feeds a residual sum is by design: info only
    for key, build, layer in (("zero_residual_block", _block(), "conv2"), ("lora_b", _lora(), "lora_B"),
                              ("adaln_zero", _adaln_zero(), "ada_gate")):
        findings = lint_path(onnx_file(f"init002_{key}", build))
        [f] = hits(findings, "INIT002")
        assert (f.layer, f.severity.value) == (layer, "info") and "residual" in f.message, key
        assert not [f for f in findings if f.severity.value == "error"], key
    findings = lint_path(keras_file("init002_keras_zero_residual", _keras_zero_residual))
    assert [(f.layer, f.severity.value) for f in hits(findings, "INIT002")] == [("conv2", "info")]
    assert not hits(findings, "INIT001") and not [f for f in findings if f.severity.value == "error"]


def test_init002_zero_kernel_on_the_trunk():
    # no path around the zero kernel: still an error
    for key, build, layer in (("no_skip", _block(residual=False), "conv2"),
                              ("unrelated_sum", _block(skip="other"), "conv2"),
                              ("also_feeds_conv", _block(extra_use=True), "conv2"),
                              ("lora_no_base", _lora(residual=False), "lora_B")):
        [f] = hits(lint_path(onnx_file(f"init002_{key}", build)), "INIT002")
        assert (f.layer, f.severity.value) == (layer, "error") and "constant" in f.message, key


def test_init001_zeros_initializer_in_config():
    # with INIT002 off, the config itself is reported
    findings = lint_path(zero_mlp(), select=["INIT001"])
    [f] = hits(findings, "INIT001")
    assert f.layer == "hidden" and f.severity.value == "warning" and "Zeros" in f.message

    # weights moved away from the symmetric start: still worth an info
    def trained_away():
        model = _mlp("ones")
        rng = np.random.default_rng(1)
        model.get_layer("hidden").set_weights([rng.standard_normal((32, 64)).astype("float32"),
                                              np.zeros(64, "float32")])
        return model

    findings = lint_path(keras_file("ones_moved", trained_away))
    [f] = hits(findings, "INIT001")
    assert f.severity.value == "info" and "Ones" in f.message
    assert not hits(findings, "INIT002")


def test_init001_near_misses():
    # zero-initialized output layer; a single hidden unit; random initializers
    import keras
    from keras import layers

    def build():
        return keras.Sequential([keras.Input((8,)),
                                 layers.Dense(1, kernel_initializer="zeros", name="one_unit"),
                                 layers.Dense(4, activation="relu", name="mid"),
                                 layers.Dense(3, kernel_initializer="zeros", name="out")])

    findings = lint_path(keras_file("init001_near", build))
    assert not hits(findings, "INIT001") and not hits(findings, "INIT002")
    assert not hits(lint_path(keras_file("mlp_default", _mlp)), "INIT001")


def _dup_model(*, same_bias: bool, zero: bool = False):
    def build():
        model = _mlp()
        rng = np.random.default_rng(3)
        k = rng.standard_normal((32, 64)).astype("float32") * 0.1
        b = rng.standard_normal(64).astype("float32") * 0.1
        if zero:
            k[:, [1, 2, 3]] = 0.0
            b[[1, 2, 3]] = 0.0
        else:
            k[:, 5] = k[:, 3]
            k[:, 9] = k[:, 3]
            k[:, 20] = k[:, 11]
            if same_bias:
                b[5] = b[9] = b[3]
                b[20] = b[11]
        model.get_layer("hidden").set_weights([k, b])
        return model

    return build


def test_init003_duplicate_units():
    findings = lint_path(keras_file("dups", _dup_model(same_bias=True)))
    [f] = hits(findings, "INIT003")
    assert f.layer == "hidden"
    assert "3 output unit(s)" in f.message and "2 group(s)" in f.message and "units 3, 5, 9" in f.message

    def onnx_conv():
        rng = np.random.default_rng(0)
        w = rng.standard_normal((6, 3, 3, 3)).astype(np.float32)
        w[4] = w[1]
        b = np.zeros(6, np.float32)
        w2 = rng.standard_normal((2, 6, 1, 1)).astype(np.float32)
        nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
                 helper.make_node("Relu", ["c"], ["r"], name="relu"),
                 helper.make_node("Conv", ["r", "w2"], ["y"], name="proj")]
        return onnx_model(nodes, [value_info("x", [1, 3, 8, 8])], [value_info("y", [1, 2, 8, 8])],
                          [tensor("w", w), tensor("b", b), tensor("w2", w2)])

    findings = lint_path(onnx_file("dup_conv", onnx_conv))
    [f] = hits(findings, "INIT003")
    assert f.layer == "conv" and "units 1, 4" in f.message


def test_init003_near_misses():
    # identical weights but different biases are different units; all-zero units are pruned, not copies
    assert not hits(lint_path(keras_file("dups_bias", _dup_model(same_bias=False))), "INIT003")
    assert not hits(lint_path(keras_file("zero_units", _dup_model(same_bias=True, zero=True))), "INIT003")

    def grouped():  # identical filters in different groups see different inputs
        rng = np.random.default_rng(0)
        w = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
        w[2] = w[0]
        w2 = rng.standard_normal((2, 4, 1, 1)).astype(np.float32)
        nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="gconv", group=2, pads=[1, 1, 1, 1]),
                 helper.make_node("Relu", ["c"], ["r"]),
                 helper.make_node("Conv", ["r", "w2"], ["y"], name="proj")]
        return onnx_model(nodes, [value_info("x", [1, 4, 8, 8])], [value_info("y", [1, 2, 8, 8])],
                          [tensor("w", w), tensor("w2", w2)])

    assert not hits(lint_path(onnx_file("grouped_conv", grouped)), "INIT003")


def _scaled(init, *, bn: bool = False):
    def build():
        import keras
        from keras import layers

        inp = keras.Input((1024,))
        x = layers.Dense(256, kernel_initializer=init, name="wide")(inp)
        if bn:
            x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        return keras.Model(inp, layers.Dense(10, name="out")(x))

    return build


def test_init004_random_normal_std_one():
    import keras

    findings = lint_path(keras_file("std_one", _scaled(keras.initializers.RandomNormal(stddev=1.0))))
    [f] = hits(findings, "INIT004")
    assert f.layer == "wide" and f.severity.value == "warning"
    # He for fan-in 1024 / fan-out 256: sqrt(2/256) = 0.0884 is the top of the band; 1/0.0884 = 11.3
    assert "RandomNormal" in f.message and "11.3x" in f.message


def test_init004_near_misses():
    import keras

    assert not hits(lint_path(keras_file("he_normal", _scaled("he_normal"))), "INIT004")
    # BatchNormalization right after re-standardizes whatever scale the kernel draws
    bn = keras_file("std_one_bn", _scaled(keras.initializers.RandomNormal(stddev=1.0), bn=True))
    assert not hits(lint_path(bn), "INIT004")
    # Keras's old default RandomNormal(0.05) is within range for this layer
    ok = keras_file("std_005", _scaled(keras.initializers.RandomNormal(stddev=0.05)))
    assert not hits(lint_path(ok), "INIT004")
