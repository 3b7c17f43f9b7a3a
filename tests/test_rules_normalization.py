"""NORM rules: input normalization, un-adapted Normalization layers, impossible Rescaling."""

from __future__ import annotations

import numpy as np
from onnx import helper

from helpers.keras_models import keras_file
from helpers.lint import hits, lint_path
from helpers.onnx_models import onnx_file, onnx_model, tensor, value_info

COVERED = {
    "NORM001": ("test_norm001_raw_image_input", "test_norm001_near_misses",
                "test_norm001_onnx_images_by_evidence", "test_norm001_rank4_inputs_that_are_not_images",
                "test_norm001_raw_uint8_input", "test_norm001_uint8_input_near_misses"),
    "NORM002": ("test_norm002_never_adapted", "test_norm002_near_misses"),
    "NORM003": ("test_norm003_rescaling_factors", "test_norm003_near_misses"),
}


def _image_model(*prep, shape=(32, 32, 3), train: bool = False):
    def build():
        import keras
        from keras import layers

        inp = keras.Input(shape)
        x = inp
        for layer in prep:
            x = layer()(x)
        x = layers.Conv2D(4, 3, activation="relu", name="conv")(x) if len(shape) == 3 else \
            layers.Dense(4, activation="relu", name="conv")(x)
        x = layers.Flatten()(x)
        model = keras.Model(inp, layers.Dense(2, name="out")(x))
        if train:
            model.compile(optimizer="sgd", loss="mse")
            rng = np.random.default_rng(0)
            model.fit(rng.uniform(0, 255, (8, *shape)), rng.standard_normal((8, 2)), epochs=1, verbose=0)
        return model

    return build


def test_norm001_raw_image_input():
    [f] = hits(lint_path(keras_file("raw_image", _image_model())), "NORM001")
    assert f.severity.value == "info" and "'conv'" in f.message


def test_norm001_near_misses():
    from keras import layers

    assert not hits(lint_path(keras_file("rescaled_image", _image_model(lambda: layers.Rescaling(1 / 255)))),
                    "NORM001")
    assert not hits(lint_path(keras_file("tabular", _image_model(shape=(10,)))), "NORM001")


def _decoder_mask(name: str = "causal_mask"):
    """A decoder's attention: float ``inputs_embeds`` (rank 3) and a 4-D float mask
    (batch, 1, seq, seq) added to the scores before the softmax, then an output projection."""
    def build():
        rng = np.random.default_rng(0)
        nodes = [helper.make_node("MatMul", ["inputs_embeds", "wq"], ["q"], name="q_proj"),
                 helper.make_node("Add", ["q", name], ["s"], name="add_mask"),
                 helper.make_node("Softmax", ["s"], ["p"], name="softmax"),
                 helper.make_node("MatMul", ["p", "wo"], ["y"], name="o_proj")]
        inits = [tensor("wq", rng.standard_normal((16, 16)).astype(np.float32)),
                 tensor("wo", rng.standard_normal((16, 16)).astype(np.float32))]
        inputs = [value_info("inputs_embeds", [1, 16, 16]), value_info(name, [1, 1, 16, 16])]
        return onnx_model(nodes, inputs, [value_info("y", [1, 1, 16, 16])], inits)

    return build


def _onnx_image(name: str, channels: int, *, conv: bool):
    """An ONNX NCHW input reaching a convolution, or a flattening Gemm."""
    def build():
        rng = np.random.default_rng(0)
        x = value_info(name, [1, channels, 16, 16])
        if conv:
            nodes = [helper.make_node("Conv", [name, "k"], ["y"], name="conv")]
            inits = [tensor("k", rng.standard_normal((4, channels, 3, 3)).astype(np.float32))]
            return onnx_model(nodes, [x], [value_info("y", [1, 4, 14, 14])], inits)
        nodes = [helper.make_node("Flatten", [name], ["f"], name="flatten"),
                 helper.make_node("Gemm", ["f", "w"], ["y"], name="fc")]
        inits = [tensor("w", rng.standard_normal((channels * 256, 4)).astype(np.float32))]
        return onnx_model(nodes, [x], [value_info("y", [1, 4])], inits)

    return build


def test_norm001_onnx_images_by_evidence():
    # a convolution consumer, three channels, or an image name make a rank-4 input an image
    for name, channels, conv, layer in (("input", 1, True, "conv"), ("data", 3, False, "fc"),
                                        ("pixel_values", 1, False, "fc")):
        [f] = hits(lint_path(onnx_file(f"norm001_{name}_{channels}_{conv}", _onnx_image(name, channels, conv=conv))),
                   "NORM001")
        assert f.layer == name and f"'{layer}'" in f.message and f.severity.value == "info"


def test_norm001_rank4_inputs_that_are_not_images():
    # issue 12: a decoder's 4-D float causal mask is no image, nor is a 1-channel input without evidence
    for name in ("causal_mask", "attention_mask", "input_2"):
        assert not hits(lint_path(onnx_file(f"norm001_mask_{name}", _decoder_mask(name))), "NORM001"), name
    # a mask named as such is not an image even when a convolution reads it (inpainting masks are 0/1)
    assert not hits(lint_path(onnx_file("norm001_conv_mask", _onnx_image("mask", 1, conv=True))), "NORM001")
    assert not hits(lint_path(onnx_file("norm001_flat_1ch", _onnx_image("input", 1, conv=False))), "NORM001")


def _uint8_model(shape, *prep, embedding: bool = False):
    def build():
        import keras
        from keras import layers

        inp = keras.Input(shape, dtype="uint8")
        x = inp
        for layer in prep:
            x = layer()(x)
        if embedding:
            x = layers.Flatten()(layers.Embedding(256, 4, name="embed")(x))
        elif len(shape) == 3:
            x = layers.Flatten()(layers.Conv2D(4, 3, activation="relu", name="conv")(x))
        return keras.Model(inp, layers.Dense(2, name="out")(x))

    return build


def _onnx_uint8_conv(key: str, *, scale: bool):
    def build():
        from onnx import TensorProto, helper

        nodes = [helper.make_node("Cast", ["x"], ["xf"], name="cast", to=TensorProto.FLOAT)]
        if scale:
            nodes.append(helper.make_node("Div", ["xf", "k255"], ["xs"], name="scale"))
        nodes.append(helper.make_node("Conv", ["xs" if scale else "xf", "w"], ["y"], name="conv"))
        inits = [tensor("w", np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32))]
        if scale:
            inits.append(tensor("k255", np.array(255.0, np.float32)))
        return onnx_model(nodes, [value_info("x", [1, 3, 32, 32], TensorProto.UINT8)],
                          [value_info("y", [1, 4, 30, 30])], inits)

    return onnx_file(key, build)


def test_norm001_raw_uint8_input():
    """Issue 12.7: a uint8 input reaching a kernel unscaled is a warning, whatever its rank."""
    [f] = hits(lint_path(keras_file("uint8_mlp", _uint8_model((784,)))), "NORM001")   # flattened 28x28
    assert f.severity.value == "warning" and "uint8 input reaches the Dense kernel of 'out'" in f.message
    [f] = hits(lint_path(keras_file("uint8_cnn", _uint8_model((32, 32, 3)))), "NORM001")
    assert f.severity.value == "warning" and "'conv'" in f.message
    [f] = hits(lint_path(_onnx_uint8_conv("uint8_cast_conv", scale=False)), "NORM001")
    assert f.severity.value == "warning" and "Conv kernel of 'conv'" in f.message


def test_norm001_uint8_input_near_misses():
    from keras import layers

    rescaled = keras_file("uint8_mlp_rescaled", _uint8_model((784,), lambda: layers.Rescaling(1 / 255)))
    assert not hits(lint_path(rescaled), "NORM001")
    assert not hits(lint_path(keras_file("uint8_ids", _uint8_model((16,), embedding=True))), "NORM001")
    assert not hits(lint_path(_onnx_uint8_conv("uint8_cast_div_conv", scale=True)), "NORM001")
    # a float32 flattened input is not raw integers: nothing (as before)
    assert not hits(lint_path(keras_file("float_mlp", _image_model(shape=(784,)))), "NORM001")



def test_norm002_never_adapted():
    from keras import layers

    trained = keras_file("norm_unadapted_trained", _image_model(lambda: layers.Normalization(name="norm"),
                                                                train=True))
    [f] = hits(lint_path(trained), "NORM002")
    assert f.layer == "norm" and f.severity.value == "warning" and "adapt" in f.message
    # a model that was never trained: adapting is still ahead, so it is only an info
    fresh = keras_file("norm_unadapted_fresh", _image_model(lambda: layers.Normalization(name="norm")))
    [f] = hits(lint_path(fresh), "NORM002")
    assert f.severity.value == "info"


def test_norm002_near_misses():
    import keras
    from keras import layers

    def adapted():
        norm = layers.Normalization(name="norm")
        norm.adapt(np.random.default_rng(0).uniform(0, 255, (16, 32, 32, 3)).astype("float32"))
        inp = keras.Input((32, 32, 3))
        x = layers.Conv2D(4, 3, activation="relu")(norm(inp))
        return keras.Model(inp, layers.Dense(2)(layers.Flatten()(x)))

    assert not hits(lint_path(keras_file("norm_adapted", adapted)), "NORM002")
    given = _image_model(lambda: layers.Normalization(mean=[120.0, 115.0, 100.0], variance=[3600.0] * 3))
    assert not hits(lint_path(keras_file("norm_given", given)), "NORM002")


def test_norm003_rescaling_factors():
    from keras import layers

    [f] = hits(lint_path(keras_file("rescale_255", _image_model(lambda: layers.Rescaling(255.0, name="r")))),
               "NORM003")
    assert f.layer == "r" and "multiplies inputs by 255" in f.message
    twice = _image_model(lambda: layers.Rescaling(1 / 255, name="r1"), lambda: layers.Rescaling(1 / 255, name="r2"))
    [f] = hits(lint_path(keras_file("rescale_twice", twice)), "NORM003")
    assert f.layer == "r2" and "2 Rescaling layers" in f.message and "1.54e-05" in f.message


def test_norm003_near_misses():
    from keras import layers

    for key, prep in {"rescale_ok": (lambda: layers.Rescaling(1 / 255),),
                      "rescale_pm1": (lambda: layers.Rescaling(1 / 127.5, offset=-1.0),),
                      "rescale_roundtrip": (lambda: layers.Rescaling(255.0), lambda: layers.Rescaling(1 / 255)),
                      "rescale_std": (lambda: layers.Rescaling(1 / 255),
                                      lambda: layers.Normalization(mean=[0.485, 0.456, 0.406],
                                                                   variance=[0.229 ** 2, 0.224 ** 2, 0.225 ** 2]))
                      }.items():
        assert not hits(lint_path(keras_file(key, _image_model(*prep))), "NORM003"), key
