"""MACs of Keras token models saved whole without functional wiring (registered ``keras.Model``
subclasses such as keras_hub's ``BertBackbone``): a formula in ``seq`` from the weights tree, a
number with ``--dim seq=N``, and per-layer formulas in the summary formats.

keras_hub is not a test dependency: the backbone here is a small registered model subclass
written with plain keras the way keras_hub writes its backbones (``bench/keras_hub_check.py``
compares real keras_hub backbones with the same architectures exported to ONNX)."""

from __future__ import annotations

import json
from typing import Any

import pytest

import inspector
from helpers.cli import one_error_line
from helpers.golden import check_golden
from helpers.keras_models import keras_file
from inspector.analysis.macs import count_macs
from inspector.analysis.symbolic import Poly
from inspector.loaders import load

V, D, H, HD, FF, BLOCKS = 50, 16, 2, 8, 32, 2
"""Vocabulary, width, heads, head size, feed-forward width, transformer blocks."""

BLOCK_SEQ = 4 * D * H * HD + 2 * D * FF
"""MACs per token of one block: the Q/K/V/O projections and the feed-forward network."""
BLOCK_SEQ2 = H * HD + H * HD
"""MACs per (query token, key token) pair of one block: QKᵀ and AV."""
POOLER = D * D
"""The pooler reads the first token only."""


def _hand(seq: int) -> int:
    return POOLER + BLOCKS * (BLOCK_SEQ * seq + BLOCK_SEQ2 * seq * seq)


def _classes() -> Any:
    import keras
    from keras import layers

    @keras.saving.register_keras_serializable(package="k7test")
    class Block(layers.Layer):
        """A post-norm transformer encoder block, as keras_hub's ``TransformerEncoder``."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.self_attention = layers.MultiHeadAttention(H, HD, name="self_attention")
            self.self_attention_layer_norm = layers.LayerNormalization(name="self_attention_layer_norm")
            self.feedforward_intermediate_dense = layers.Dense(FF, activation="gelu", name="ff_in")
            self.feedforward_output_dense = layers.Dense(D, name="ff_out")

        def call(self, x: Any) -> Any:
            x = self.self_attention_layer_norm(x + self.self_attention(x, x))
            return x + self.feedforward_output_dense(self.feedforward_intermediate_dense(x))

    @keras.saving.register_keras_serializable(package="k7test")
    class TinyBackbone(keras.Model):
        """Token ids ``[batch, seq]`` → hidden states; constructor args only in its config."""

        def __init__(self, conv: bool = False, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.conv = conv
            self.token_embedding = layers.Embedding(V, D, name="token_embedding")
            self.embeddings_layer_norm = layers.LayerNormalization(name="embeddings_layer_norm")
            self.transformer_layers = [Block(name=f"transformer_layer_{i}") for i in range(BLOCKS)]
            self.pooled_dense = layers.Dense(D, activation="tanh", name="pooled_dense")
            if conv:
                self.mixer = layers.Conv1D(D, 3, padding="same", name="mixer")

        def call(self, ids: Any) -> Any:
            x = self.embeddings_layer_norm(self.token_embedding(ids))
            for block in self.transformer_layers:
                x = block(x)
            if self.conv:
                x = self.mixer(x)
            return x, self.pooled_dense(x[:, 0, :])

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "conv": self.conv}

    @keras.saving.register_keras_serializable(package="k7test")
    class TinyImageNet(keras.Model):
        """An image model subclass: no embedding, so no sequence and no formula."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.stem = layers.Conv2D(4, 3, name="stem")
            self.head = layers.Dense(3, name="head")

        def call(self, x: Any) -> Any:
            return self.head(keras.ops.mean(self.stem(x), axis=(1, 2)))

    return TinyBackbone, TinyImageNet


def _backbone(*, conv: bool = False) -> Any:
    import numpy as np

    model = _classes()[0](conv=conv, name="tiny_backbone")
    model(np.zeros((1, 5), dtype="int32"))
    return model


def _image() -> Any:
    import numpy as np

    model = _classes()[1](name="tiny_image")
    model(np.zeros((1, 8, 8, 3), dtype="float32"))
    return model


@pytest.fixture(scope="module")
def backbone() -> Any:
    return keras_file("k7_backbone", _backbone)


def test_backbone_formula_equals_hand_count(backbone):
    graph = load(backbone)
    assert graph.kind == "subclassed"
    report = count_macs(graph)
    seq = Poly.symbol("seq")
    expected = POOLER + BLOCKS * (BLOCK_SEQ * seq + BLOCK_SEQ2 * seq * seq)
    assert report.formula == expected and report.formula_complete
    assert report.total == POOLER and not report.complete
    assert report.layer("token_embedding") == 0 and report.layer("embeddings_layer_norm") == 0
    assert report.layer("pooled_dense") == POOLER
    assert report.layer_formula("transformer_layer_0") == BLOCK_SEQ * seq + BLOCK_SEQ2 * seq * seq
    assert report.layer_formula("pooled_dense") is None


@pytest.mark.parametrize("seq", [1, 7, 128])
def test_backbone_bound_sequence_is_exact(backbone, seq):
    report = count_macs(load(backbone, dims={"seq": seq}))
    assert report.total == _hand(seq) and report.complete and report.formula is None
    assert inspector.count_macs(backbone, dims={"seq": seq}).total == _hand(seq)


def test_backbone_parameters_stay_exact(backbone):
    import keras

    model = keras.saving.load_model(backbone)  # our own file, written by the test
    assert inspector.summary(backbone).to_dict()["totals"]["params"] == model.count_params()


def test_backbone_with_a_layer_not_understood_is_a_lower_bound():
    report = count_macs(load(keras_file("k7_backbone_conv", lambda: _backbone(conv=True))))
    assert report.unknown == ("mixer",) or "mixer" in report.unknown
    assert not report.formula_complete and not report.complete
    assert report.formula is not None and report.formula.evaluate({"seq": 3}) == _hand(3)


def test_image_subclass_has_no_sequence(cli):
    path = keras_file("k7_image", _image)
    report = count_macs(load(path))
    assert report.formula is None and not report.complete
    result = cli("summary", path, "--dim", "seq=4")
    assert result.code == 2
    assert one_error_line(result.err, path).endswith(
        "no symbolic dim named 'seq' in this model (its symbols: none: every dim is fixed or anonymous)")


# -- summary formats: per-layer formulas --------------------------------------------------------
def test_summary_text_shows_layer_formulas(backbone, cli):
    result = cli("summary", backbone, "--macs")
    assert result.code == 0
    block = f"{BLOCK_SEQ}·seq + {BLOCK_SEQ2}·seq²"
    assert result.out.count(block) == BLOCKS
    assert f"Total MACs: {POOLER} + {BLOCKS * BLOCK_SEQ}·seq + {BLOCKS * BLOCK_SEQ2}·seq²" in result.out
    check_golden("summary_backbone_formula.txt", result.out)
    keras3 = cli("summary", backbone, "--macs", "-f", "keras3").out
    assert keras3.count(f"{BLOCK_SEQ}·seq +") == BLOCKS and keras3.count(f"{BLOCK_SEQ2}·seq²") == BLOCKS  # wrapped
    github = cli("summary", backbone, "--macs", "-f", "github").out
    assert github.count(block) == BLOCKS


def test_summary_text_bound_shows_numbers(backbone, cli):
    out = cli("summary", backbone, "--macs", "--dim", "seq=16").out
    assert "·seq" not in out
    assert f"Total MACs: {_hand(16):,}" in out
    assert str(BLOCK_SEQ * 16 + BLOCK_SEQ2 * 256) in out


def test_summary_json_layer_formulas(backbone, cli):
    doc = json.loads(cli("summary", backbone, "-f", "json").out)
    layers = {lay["name"]: lay for lay in doc["layers"]}
    block = layers["transformer_layer_1"]
    assert block["macs"] is None
    assert block["macs_formula"] == {
        "monomials": [{"coefficient": BLOCK_SEQ, "powers": {"seq": 1}},
                      {"coefficient": BLOCK_SEQ2, "powers": {"seq": 2}}],
        "text": f"{BLOCK_SEQ}·seq + {BLOCK_SEQ2}·seq²", "complete": True}
    assert "macs_formula" not in layers["pooled_dense"] and layers["pooled_dense"]["macs"] == POOLER
    assert doc["totals"]["macs_formula"]["complete"] is True
    bound = json.loads(cli("summary", backbone, "-f", "json", "--dim", "seq=16").out)
    assert all("macs_formula" not in lay for lay in bound["layers"])
    assert bound["totals"]["macs"] == _hand(16) and bound["totals"]["macs_complete"] is True
