"""GRAPH rules (dead nodes, unused initializers and inputs) and MODEL001 (model state)."""

from __future__ import annotations

import numpy as np
from onnx import helper

from helpers.keras_models import keras_file
from helpers.lint import hits, lint_path, load_graph, problems
from helpers.onnx_models import onnx_file, onnx_model, tensor, tied_model, value_info

COVERED = {
    "GRAPH001": ("test_graph001_dead_node_and_unused_initializer", "test_graph_near_misses",
                 "test_graph_subgraph_captures_next_to_real_dead_parts", "test_graph_outer_scope_captures_are_uses"),
    "GRAPH002": ("test_graph002_unused_input", "test_graph_near_misses",
                 "test_graph_subgraph_captures_next_to_real_dead_parts", "test_graph_outer_scope_captures_are_uses"),
    "GRAPH003": ("test_graph003_transposed_and_identical_copies", "test_graph003_near_misses",
                 "test_graph003_initializer_fills_are_no_copies"),
    "MODEL001": ("test_model001_states", "test_model001_near_miss", "test_model001_fresh_attention_untrained"),
}


def _onnx(dead: bool = False, unused_init: bool = False, unused_input: bool = False):
    def build():
        rng = np.random.default_rng(0)
        nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
                 helper.make_node("Relu", ["h"], ["y"], name="relu")]
        inits = [tensor("w", rng.standard_normal((4, 3)).astype(np.float32))]
        inputs = [value_info("x", [1, 4])]
        if dead:
            nodes.append(helper.make_node("Sigmoid", ["h"], ["unused_out"], name="dead_sigmoid"))
        if unused_init:
            inits.append(tensor("leftover", np.zeros((16,), np.float32)))
        if unused_input:
            inputs.append(value_info("mask", [1, 4]))
        return onnx_model(nodes, inputs, [value_info("y", [1, 3])], inits)

    return build


def test_graph001_dead_node_and_unused_initializer():
    findings = hits(lint_path(onnx_file("dead", _onnx(dead=True))), "GRAPH001")
    assert [(f.layer, f.severity.value) for f in findings] == [("dead_sigmoid", "warning")]
    [f] = hits(lint_path(onnx_file("leftover", _onnx(unused_init=True))), "GRAPH001")
    assert f.layer is None and "'leftover'" in f.message and f.severity.value == "info"


def test_graph002_unused_input():
    [f] = hits(lint_path(onnx_file("unused_input", _onnx(unused_input=True))), "GRAPH002")
    assert f.layer == "mask" and f.severity.value == "warning"


def test_graph_near_misses():
    findings = lint_path(onnx_file("clean", _onnx()))
    assert not hits(findings, "GRAPH001") and not hits(findings, "GRAPH002") and not problems(findings)


def _if_model(*, dead: bool = False):
    """silero-vad's shape: an ``If`` (opset 16) whose branches read outer tensors by name — a node's
    output (``h``), an input (``sr``, two bodies deep), a computed state and a stored tensor (``w2``)
    that nothing in the outer graph consumes.  ``dead`` adds a really dead node and an unused input."""
    def build():
        from onnx import TensorProto

        rng = np.random.default_rng(0)
        vec = [1, 4]
        inner = helper.make_graph([helper.make_node("Add", ["t0", "sr"], ["t1"], name="add_sr")], "inner",
                                  [], [value_info("t1", vec)])
        then = helper.make_graph([helper.make_node("Add", ["h", "s2"], ["t0"], name="add_state"),
                                  helper.make_node("If", ["flag"], ["t2"], name="inner_if",
                                                   then_branch=inner, else_branch=inner)],
                                 "then", [], [value_info("t2", vec)])
        other = helper.make_graph([helper.make_node("Mul", ["h", "w2"], ["e"], name="scale")], "else", [],
                                  [value_info("e", vec)])
        nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
                 helper.make_node("Relu", ["state"], ["s2"], name="state_relu"),
                 helper.make_node("If", ["flag"], ["y"], name="branch", then_branch=then, else_branch=other)]
        inputs = [value_info("x", vec), value_info("flag", [], TensorProto.BOOL), value_info("sr", vec),
                  value_info("state", vec)]
        if dead:
            nodes.append(helper.make_node("Sigmoid", ["h"], ["unused_out"], name="dead_sigmoid"))
            inputs.append(value_info("mask", vec))
        inits = [tensor("w", rng.standard_normal((4, 4)).astype(np.float32)),
                 tensor("w2", rng.standard_normal((1, 4)).astype(np.float32))]
        return onnx_model(nodes, inputs, [value_info("y", vec)], inits, opset=16)

    return build


def _loop_model():
    """A ``Loop`` whose body adds ``h`` (a MatMul of the outer graph) and the outer input ``bias``."""
    def build():
        from onnx import TensorProto

        vec = [1, 4]
        body = helper.make_graph(
            [helper.make_node("Identity", ["cond_in"], ["cond_out"], name="keep_going"),
             helper.make_node("Add", ["v_in", "h"], ["v1"], name="add_h"),
             helper.make_node("Add", ["v1", "bias"], ["v_out"], name="add_bias")],
            "body", [value_info("i", [], TensorProto.INT64), value_info("cond_in", [], TensorProto.BOOL),
                     value_info("v_in", vec)],
            [value_info("cond_out", [], TensorProto.BOOL), value_info("v_out", vec)])
        nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
                 helper.make_node("Loop", ["trips", "", "v0"], ["y"], name="loop", body=body)]
        inputs = [value_info("x", vec), value_info("bias", vec), value_info("v0", vec),
                  value_info("trips", [], TensorProto.INT64)]
        w = tensor("w", np.random.default_rng(0).standard_normal((4, 4)).astype(np.float32))
        return onnx_model(nodes, inputs, [value_info("y", vec)], [w], opset=16)

    return build


def test_graph_outer_scope_captures_are_uses():
    for key, build in (("if_captures", _if_model()), ("loop_captures", _loop_model())):
        findings = lint_path(onnx_file(key, build))
        assert not hits(findings, "GRAPH001") and not hits(findings, "GRAPH002"), key


def test_graph_subgraph_captures_next_to_real_dead_parts():
    findings = lint_path(onnx_file("if_captures_dead", _if_model(dead=True)))
    assert [(f.layer, f.severity.value) for f in hits(findings, "GRAPH001")] == [("dead_sigmoid", "warning")]
    assert [f.layer for f in hits(findings, "GRAPH002")] == ["mask"]


def _mlp(train: bool):
    def build():
        import keras
        from keras import layers

        inp = keras.Input((4,))
        x = layers.Dense(8, activation="relu")(inp)
        model = keras.Model(inp, layers.Dense(1)(x))
        if train:
            model.compile(optimizer="sgd", loss="mse")
            rng = np.random.default_rng(0)
            model.fit(rng.standard_normal((16, 4)), rng.standard_normal((16, 1)), epochs=1, verbose=0)
        return model

    return build


def test_model001_states():
    [f] = hits(lint_path(keras_file("state_fresh", _mlp(False))), "MODEL001")
    assert f.severity.value == "info" and f.message.startswith("model looks untrained")
    assert "2 bias(es) are exactly their initial value" in f.message
    [f] = hits(lint_path(keras_file("state_trained", _mlp(True))), "MODEL001")
    assert f.message.startswith("model looks trained") and "optimizer state has taken 1 step(s)" in f.message
    # an ONNX file without BatchNormalization: nothing to go by
    [f] = hits(lint_path(onnx_file("clean", _onnx())), "MODEL001")
    assert f.message.startswith("cannot tell whether the model is trained")


def test_model001_near_miss():
    # reported once per model, never per layer, and never above info
    findings = lint_path(keras_file("state_trained", _mlp(True)))
    assert [(f.layer, f.severity.value) for f in hits(findings, "MODEL001")] == [(None, "info")]
    assert not hits(lint_path(keras_file("state_trained", _mlp(True)), ignore=["MODEL"]), "MODEL001")


def _attention():
    """A fresh Transformer block: MultiHeadAttention and EinsumDense kernels of rank 3."""
    import keras
    from keras import layers

    inp = keras.Input((16, 32))
    x = layers.MultiHeadAttention(num_heads=4, key_dim=8, name="mha")(inp, inp)
    x = layers.EinsumDense("abc,cde->abde", output_shape=(16, 4, 16), bias_axes="de", name="einsum")(x)
    return keras.Model(inp, layers.Dense(2, name="head")(layers.Flatten()(x)))


def test_model001_fresh_attention_untrained():
    # Keras 3.15's EinsumDense draws its kernel with fans over the equation's input and output
    # axes (query kernel (32, 4, 8): fan-in 32, fan-out 32), not as a convolution kernel of
    # rank 3 (fan-in 128, fan-out 256); comparing with the convolution's spread made every
    # fresh attention kernel look trained, and a fresh Transformer "looked trained".
    [f] = hits(lint_path(keras_file("state_attention", _attention)), "MODEL001")
    assert f.message.startswith("model looks untrained"), f.message
    assert "6 kernel(s) have exactly the spread" in f.message and "no longer" not in f.message


def test_einsum_fans_follow_the_keras_that_saved_the_config():
    from inspector.analysis import initializers as inits

    axes = inits.einsum_kernel_axes("MultiHeadAttention", {}, "mha/attention_output/kernel", (4, 8, 32))
    assert axes == ((0, 1), (2,))
    assert inits.einsum_kernel_axes("EinsumDense", {"equation": "...b,bc->...c"}, "kernel", (6, 3)) == ((0,), (1,))
    assert inits.einsum_kernel_axes("Conv2D", {}, "kernel", (3, 3, 4, 8)) is None
    new = inits.parse({"class_name": "GlorotUniform", "config": {"seed": None, "input_axes": None,
                                                                  "output_axes": None}})
    old = inits.parse({"class_name": "GlorotUniform", "config": {"seed": None}})  # tf_keras, Keras < 3.15
    layer_axes = inits.einsum_kernel_axes("MultiHeadAttention", {}, "query/kernel", (32, 4, 8))
    assert inits.expected_std(new, (32, 4, 8), layer_axes=layer_axes) == np.sqrt(1 / 32)
    assert inits.expected_std(old, (32, 4, 8), layer_axes=layer_axes) == np.sqrt(1 / 192)  # the convolution's fans
    explicit = inits.parse({"class_name": "HeNormal", "config": {"input_axes": [0, 1], "output_axes": [2]}})
    assert inits.expected_std(explicit, (32, 4, 8), layer_axes=layer_axes) == np.sqrt(2 / 128)


def test_graph003_transposed_and_identical_copies():
    findings = hits(lint_path(onnx_file("dup_copies", lambda: tied_model(copies=True))), "GRAPH003")
    assert sorted((f.severity.value, f.layer, f.message) for f in findings) == [
        ("info", None, "'E_T' is a transposed copy of 'E' (8,192 bytes wasted); store the tensor once"),
        ("info", None, "'W2' is an identical copy of 'W' (4,096 bytes wasted); store the tensor once")]


def test_graph003_near_misses():
    """Different tensors of the same (or reversed) shapes, and equal tensors under 1,024 elements."""
    findings = lint_path(onnx_file("dup_distinct", lambda: tied_model(copies=False)))
    assert not hits(findings, "GRAPH003")
    assert not hits(lint_path(onnx_file("clean", _onnx())), "GRAPH003")


def _fresh_wide():
    """A fresh Keras model whose zero biases and BatchNormalization fills (1,024 values each) are equal."""
    import keras
    from keras import layers

    inp = keras.Input((16,))
    x = layers.Dense(1024, name="d1")(inp)
    x = layers.BatchNormalization(name="bn1")(x)
    x = layers.Dense(1024, name="d2")(layers.ReLU()(x))
    return keras.Model(inp, layers.Dense(1, name="out")(x))


def test_graph003_initializer_fills_are_no_copies():
    """Zero biases and betas, unit gammas and variances of a freshly built model are equal because an
    initializer filled them: GRAPH003 said each was a copy to store once (ResNet50: 51 findings,
    EfficientNetV2L: 453).  The analysis still reports them (``info``), marked as fills."""
    from inspector.analysis.duplicates import find_duplicates

    path = keras_file("fresh_wide", _fresh_wide)
    assert not hits(lint_path(path), "GRAPH003")
    pairs = find_duplicates(load_graph(path)).pairs
    assert len(pairs) == 4 and all(p.fill for p in pairs)  # bias d2, beta, mean = bias d1; variance = gamma
    assert all(not p.fill for p in find_duplicates(load_graph(onnx_file("dup_copies",
                                                                       lambda: tied_model(copies=True)))).pairs)
