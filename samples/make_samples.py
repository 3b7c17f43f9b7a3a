"""Regenerate the sample models shipped in ``samples/``.

    python samples/make_samples.py            # every sample
    python samples/make_samples.py seed_cnn   # only some

Needs the ``tensorflow`` extra (Keras 3).  Each builder writes its files into
this folder and returns their names.  Weights are drawn with fixed seeds, so
the models are the same every time (the .keras archives still record the date
they were saved).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = Path(__file__).resolve().parent
SAMPLES: dict[str, Callable[[Path], list[str]]] = {}


def sample(fn: Callable[[Path], list[str]]) -> Callable[[Path], list[str]]:
    """Register a builder under its function name."""
    SAMPLES[fn.__name__] = fn
    return fn


def seed_cnn_model():
    """The small CNN of the seed document, with the layer names of its listing."""
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            layers.Conv2D(1, 3, name="conv2d_6"),
            layers.BatchNormalization(name="batch_normalization_6"),
            layers.ReLU(name="re_lu_6"),
            layers.Conv2D(2, 3, name="conv2d_7"),
            layers.BatchNormalization(name="batch_normalization_7"),
            layers.ReLU(name="re_lu_7"),
            layers.Flatten(name="flatten_3"),
            layers.Dense(10, name="dense_3"),
        ],
        name="sequential_3",
    )


@sample
def seed_cnn(out: Path) -> list[str]:
    """samples/seed_cnn.keras and .h5: the seed's CNN (its listing is tests/golden/sequential_keras2_summary.txt)."""
    import keras

    keras.utils.set_random_seed(0)
    model = seed_cnn_model()
    model.save(out / "seed_cnn.keras")
    model.save(out / "seed_cnn.h5")
    return ["seed_cnn.keras", "seed_cnn.h5"]


# Further samples register themselves below with @sample.


# -- lint samples: small models with known faults (issue 4) ---------------------------------
# `inspector lint samples/lint_*.keras samples/lint_*.onnx` shows each rule at work.


@sample
def lint_zero_mlp(out: Path) -> list[str]:
    """An MLP whose hidden kernels start at zero (INIT002: symmetric, dead units)."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((64,), name="features"),
        layers.Dense(32, activation="relu", kernel_initializer="zeros", name="hidden_1"),
        layers.Dense(32, activation="relu", kernel_initializer="zeros", name="hidden_2"),
        layers.Dense(10, activation="softmax", name="classes"),
    ], name="zero_mlp")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.save(out / "lint_zero_mlp.keras")
    return ["lint_zero_mlp.keras"]


def _deep_sigmoid():
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    x = inputs = keras.Input((32,), name="features")
    for i in range(5):
        x = layers.Dense(32, activation="sigmoid", name=f"sigmoid_{i + 1}")(x)
    outputs = layers.Dense(10, name="logits")(x)
    model = keras.Model(inputs, outputs, name="deep_sigmoid_mlp")
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


@sample
def lint_deep_sigmoid(out: Path) -> list[str]:
    """Five sigmoid layers in a row (ACT002: vanishing gradients), as .keras and as an
    ONNX export written with onnx.helper from the same weights (Gemm + Sigmoid)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = _deep_sigmoid()
    model.save(out / "lint_deep_sigmoid.keras")
    nodes, inits, x = [], [], "features"
    for layer in model.layers[1:]:
        kernel, bias = layer.get_weights()
        inits += [numpy_helper.from_array(kernel.astype(np.float32), f"{layer.name}/kernel"),
                  numpy_helper.from_array(bias.astype(np.float32), f"{layer.name}/bias")]
        y = f"{layer.name}/out"
        nodes.append(helper.make_node("Gemm", [x, f"{layer.name}/kernel", f"{layer.name}/bias"], [y],
                                      name=layer.name))
        x = y
        if layer.get_config()["activation"] == "sigmoid":
            nodes.append(helper.make_node("Sigmoid", [x], [f"{layer.name}/act"], name=f"{layer.name}/sigmoid"))
            x = f"{layer.name}/act"
    graph = helper.make_graph(nodes, "deep_sigmoid_mlp",
                              [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 32])],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["batch", 10])], inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="make_samples")
    proto.ir_version = 8
    onnx.checker.check_model(proto)
    onnx.save(proto, out / "lint_deep_sigmoid.onnx")
    return ["lint_deep_sigmoid.keras", "lint_deep_sigmoid.onnx"]


@sample
def lint_bn_cnn(out: Path) -> list[str]:
    """A small CNN trained for one step: BatchNormalization with epsilon 0 (BN001) and a
    Normalization layer that was never adapted (NORM002)."""
    import keras
    import numpy as np
    from keras import layers

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((32, 32, 3), name="image"),
        layers.Normalization(name="standardize"),          # adapt() never called
        layers.Conv2D(8, 3, use_bias=False, name="conv"),
        layers.BatchNormalization(epsilon=0.0, name="bn"),  # no epsilon
        layers.ReLU(name="relu"),
        layers.GlobalAveragePooling2D(name="pool"),
        layers.Dense(10, name="logits"),
    ], name="bn_cnn")
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    model.fit(rng.uniform(0, 255, (16, 32, 32, 3)).astype("float32"), rng.integers(0, 10, 16),
              epochs=1, batch_size=16, verbose=0)
    model.save(out / "lint_bn_cnn.keras")
    return ["lint_bn_cnn.keras"]


def main(argv: list[str]) -> int:
    names = argv or list(SAMPLES)
    unknown = [n for n in names if n not in SAMPLES]
    if unknown:
        print(f"unknown sample(s): {', '.join(unknown)}; known: {', '.join(SAMPLES)}", file=sys.stderr)
        return 2
    for name in names:
        for written in SAMPLES[name](HERE):
            print(f"wrote samples/{written}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
