"""GRAPH rules (dead nodes, unused initializers and inputs) and MODEL001 (model state)."""

from __future__ import annotations

import numpy as np
from onnx import helper

from helpers.keras_models import keras_file
from helpers.lint import hits, lint_path, problems
from helpers.onnx_models import onnx_file, onnx_model, tensor, value_info

COVERED = {
    "GRAPH001": ("test_graph001_dead_node_and_unused_initializer", "test_graph_near_misses"),
    "GRAPH002": ("test_graph002_unused_input", "test_graph_near_misses"),
    "MODEL001": ("test_model001_states", "test_model001_near_miss"),
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
