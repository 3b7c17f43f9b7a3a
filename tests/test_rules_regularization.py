"""REG rules: no regularization in a large model, dropout rates, augmentation layers."""

from __future__ import annotations

from onnx import helper

from helpers.keras_models import keras_file
from helpers.lint import hits, lint_path
from helpers.onnx_models import onnx_file, onnx_model, value_info

COVERED = {
    "REG001": ("test_reg001_large_unregularized", "test_reg001_near_misses", "test_reg001_composite_layer_dropout"),
    "REG002": ("test_reg002_dropout_rates", "test_reg002_near_miss"),
    "REG003": ("test_reg003_augmentation_layers", "test_reg003_near_miss"),
}


def _wide(*extra, regularizer=None, units: int = 1024):
    def build():
        import keras
        from keras import layers

        inp = keras.Input((1024,))
        x = layers.Dense(units, activation="relu", kernel_regularizer=regularizer, name="wide")(inp)
        for layer in extra:
            x = layer()(x)
        return keras.Model(inp, layers.Dense(10, name="out")(x))

    return build


def test_reg001_large_unregularized():
    [f] = hits(lint_path(keras_file("wide_plain", _wide())), "REG001")
    # 1024*1024 + 1024 + 1024*10 + 10 parameters, from the architecture
    assert f.severity.value == "info" and f.message.startswith(f"{1024 * 1024 + 1024 + 10250:,} parameters")


def test_reg001_near_misses():
    import keras
    from keras import layers

    assert not hits(lint_path(keras_file("wide_dropout", _wide(lambda: layers.Dropout(0.3)))), "REG001")
    assert not hits(lint_path(keras_file("wide_l2", _wide(regularizer=keras.regularizers.L2(1e-4)))), "REG001")
    assert not hits(lint_path(keras_file("narrow", _wide(units=64))), "REG001")  # < 1M parameters


def _backbone(dropout: float):
    """A model around a registered composite layer (as keras_hub backbones are) whose config says
    ``dropout``: the Dropout it applies is inside its ``call``, invisible in the saved file."""
    def build():
        import keras
        from keras import layers

        @keras.saving.register_keras_serializable(package="test_hub")
        class TinyBackbone(layers.Layer):
            def __init__(self, width: int = 1024, dropout: float = 0.0, **kwargs):
                super().__init__(**kwargs)
                self.width, self.dropout = width, dropout
                self.dense = layers.Dense(width, activation="relu")
                self.drop = layers.Dropout(dropout)

            def build(self, input_shape):
                self.dense.build(input_shape)

            def call(self, x, training=None):
                return self.drop(self.dense(x), training=training)

            def get_config(self):
                return {**super().get_config(), "width": self.width, "dropout": self.dropout}

        inp = keras.Input((1024,))
        x = TinyBackbone(dropout=dropout, name="backbone")(inp)
        return keras.Model(inp, layers.Dense(10, name="out")(x))

    return build


def test_reg001_composite_layer_dropout():
    """Issue 12.5: a keras_hub-style backbone's own ``dropout: 0.1`` is dropout; ``dropout: 0`` is not."""
    assert not hits(lint_path(keras_file("backbone_dropout", _backbone(0.1))), "REG001")
    [f] = hits(lint_path(keras_file("backbone_no_dropout", _backbone(0.0))), "REG001")
    assert "no dropout" in f.message


def test_reg002_dropout_rates():
    from keras import layers

    findings = lint_path(keras_file("bad_dropouts", _wide(lambda: layers.Dropout(0.9, name="heavy"),
                                                        lambda: layers.Dropout(0.0, name="noop"))))
    got = {f.layer: f.message for f in hits(findings, "REG002")}
    assert set(got) == {"heavy", "noop"} and "90%" in got["heavy"] and "does nothing" in got["noop"]

    def onnx_dropout():
        nodes = [helper.make_node("Dropout", ["x"], ["y"], name="drop", ratio=0.85)]
        return onnx_model(nodes, [value_info("x", [1, 4])], [value_info("y", [1, 4])], opset=10)

    assert [f.layer for f in hits(lint_path(onnx_file("dropout_085", onnx_dropout)), "REG002")] == ["drop"]


def test_reg002_near_miss():
    from keras import layers

    assert not hits(lint_path(keras_file("wide_dropout", _wide(lambda: layers.Dropout(0.3)))), "REG002")


def _augmented(with_aug: bool):
    def build():
        import keras
        from keras import layers

        inp = keras.Input((16, 16, 3))
        x = layers.RandomFlip(name="flip")(inp) if with_aug else inp
        x = layers.Conv2D(4, 3, activation="relu")(layers.Rescaling(1 / 255)(x))
        return keras.Model(inp, layers.Dense(2)(layers.Flatten()(x)))

    return build


def test_reg003_augmentation_layers():
    [f] = hits(lint_path(keras_file("augmented", _augmented(True))), "REG003")
    assert f.layer == "flip" and f.severity.value == "info" and "RandomFlip" in f.message


def test_reg003_near_miss():
    assert not hits(lint_path(keras_file("not_augmented", _augmented(False))), "REG003")
