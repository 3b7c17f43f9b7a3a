"""MACs of Keras transformer layers and of composite layers built from sublayers
(keras_hub's TransformerEncoder/Decoder and the like), checked against hand counts.

keras_hub is not a test dependency: the composite layers here are small registered
layers written with plain keras the way keras_hub writes its own."""

from __future__ import annotations

from typing import Any

import pytest

from helpers.keras_models import keras_file
from inspector.analysis.macs import count_macs
from inspector.ir import Layer, ModelGraph, Weight
from inspector.loaders import load

T, S, D, H, HD, FF = 12, 7, 32, 4, 8, 64
"""Query tokens, key tokens (cross-attention), width, heads, head size, feed-forward width."""


def _attention(tq: int, tk: int) -> int:
    """Q/K/V/O projections plus QKᵀ and AV of one multi-head attention."""
    return tq * D * H * HD * 2 + tk * D * H * HD * 2 + tq * tk * (H * HD + H * HD)


def _ffn(tokens: int) -> int:
    return tokens * (D * FF + FF * D)


def _layers() -> Any:
    import keras
    from keras import layers

    @keras.saving.register_keras_serializable(package="k6test")
    class Block(layers.Layer):
        """A pre-norm transformer block (self-attention, optional cross-attention, FFN)."""

        def __init__(self, cross: bool = False, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.cross = cross
            self.norm = layers.LayerNormalization(name="self_attention_layer_norm")
            self.self_attention_layer = layers.MultiHeadAttention(H, HD, name="self_attention_layer")
            if cross:
                self.cross_attention_layer = layers.MultiHeadAttention(H, HD, name="cross_attention_layer")
            self.feedforward_intermediate_dense = layers.Dense(FF, activation="gelu", name="ff_in")
            self.feedforward_output_dense = layers.Dense(D, name="ff_out")

        def call(self, x: Any, context: Any = None) -> Any:
            h = self.norm(x)
            x = x + self.self_attention_layer(h, h)
            if self.cross:
                x = x + self.cross_attention_layer(x, context)
            return x + self.feedforward_output_dense(self.feedforward_intermediate_dense(x))

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "cross": self.cross}

    @keras.saving.register_keras_serializable(package="k6test")
    class FusedAttention(layers.Layer):
        """Attention through one fused QKV projection: its products are invisible in the weights."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.qkv_attn = layers.Dense(3 * D, name="qkv_attn")

        def call(self, x: Any) -> Any:
            q, k, v = keras.ops.split(self.qkv_attn(x), 3, axis=-1)
            a = keras.ops.softmax(keras.ops.matmul(q, keras.ops.transpose(k, (0, 2, 1))))
            return keras.ops.matmul(a, v)

    @keras.saving.register_keras_serializable(package="k6test")
    class ConvBlock(layers.Layer):
        """A composite whose sublayer is a convolution: not a per-token projection."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.conv = layers.Conv1D(D, 3, padding="same", name="conv")

        def call(self, x: Any) -> Any:
            return self.conv(x)

    return Block, FusedAttention, ConvBlock


def _transformer() -> Any:
    import keras
    from keras import layers

    block, _, _ = _layers()
    x_in = keras.Input((T, D), name="x")
    ctx = keras.Input((S, D), name="ctx")
    x = block(name="encoder")(x_in)
    x = block(cross=True, name="decoder")(x, ctx)
    x = layers.MultiHeadAttention(H, HD, name="mha")(x, ctx)
    x = layers.EinsumDense("abc,cde->abde", output_shape=(T, H, HD), bias_axes="de", name="einsum")(x)
    x = layers.Reshape((T, H * HD))(x)
    x = layers.Dense(D, name="dense")(x)
    return keras.Model([x_in, ctx], x)


def _unknown_composites() -> Any:
    import keras

    _, fused, conv = _layers()
    x_in = keras.Input((T, D), name="x")
    return keras.Model(x_in, conv(name="conv_block")(fused(name="fused")(x_in)))


@pytest.fixture(scope="module")
def transformer() -> ModelGraph:
    return load(keras_file("k6_transformer", _transformer))


def test_transformer_block_macs_match_hand_count(transformer):
    report = count_macs(transformer)
    assert report.layer("encoder") == _attention(T, T) + _ffn(T)
    assert report.layer("decoder") == _attention(T, T) + _attention(T, S) + _ffn(T)
    assert report.layer("mha") == _attention(T, S)
    assert report.layer("einsum") == T * D * H * HD
    assert report.layer("dense") == T * H * HD * D
    assert report.complete


def test_transformer_shapes_are_known(transformer):
    shapes = {lay.name: lay.output_shapes for lay in transformer.layers}
    assert shapes["mha"] == [(None, T, D)] and shapes["einsum"] == [(None, T, H, HD)]
    assert shapes["encoder"] == [(None, T, D)]


def test_composites_that_hide_their_products_stay_unknown():
    report = count_macs(load(keras_file("k6_unknown_composites", _unknown_composites)))
    assert report.layer("fused") is None and report.layer("conv_block") is None
    assert set(report.unknown) == {"fused", "conv_block"}


def _composite(name: str, cls: str, weights: list[Weight], shapes: list[tuple[Any, ...]],
               out: tuple[Any, ...]) -> ModelGraph:
    graph = ModelGraph(name="m", format="keras")
    ins = [Layer(f"in{i}", "InputLayer", inbound=[[]], node_shapes=[[s]]) for i, s in enumerate(shapes)]
    from inspector.ir import Inbound

    graph.layers = [*ins, Layer(name, cls, inbound=[[Inbound(lay.name) for lay in ins]], node_shapes=[[out]],
                                weights=weights)]
    return graph


def _w(name: str, *shape: int) -> Weight:
    return Weight(name, name.rsplit("/", 1)[-1], shape, "float32")


def test_grouped_query_attention_and_gated_ffn():
    """A Llama-style decoder block (keras_hub names: _query_dense …, grouped KV heads, gated FFN)."""
    kv_heads, ff = 2, 48
    weights = [_w("_self_attention_layer/_query_dense/kernel", D, H, HD),
               _w("_self_attention_layer/_key_dense/kernel", D, kv_heads, HD),
               _w("_self_attention_layer/_value_dense/kernel", D, kv_heads, HD),
               _w("_self_attention_layer/_output_dense/kernel", H, HD, D),
               _w("_self_attention_layernorm/scale", D),
               _w("_feedforward_gate_dense/kernel", D, ff), _w("_feedforward_intermediate_dense/kernel", D, ff),
               _w("_feedforward_output_dense/kernel", ff, D)]
    graph = _composite("block", "LlamaTransformerDecoder", weights, [(None, T, D)], (None, T, D))
    expected = (T * D * H * HD * 2 + T * D * kv_heads * HD * 2 + T * T * 2 * H * HD + T * 3 * D * ff)
    assert count_macs(graph).layer("block") == expected


def test_heads_first_kernels():
    """Gemma's decoder block stores ``[heads, width, head_size]`` query/key/value kernels."""
    kv_heads, ff = 2, 48
    weights = [_w("attention/query/var_0", H, D, HD), _w("attention/key/var_0", kv_heads, D, HD),
               _w("attention/value/var_0", kv_heads, D, HD), _w("attention/attention_output/var_0", H, HD, D),
               _w("pre_attention_norm/var_0", D), _w("ffw_gating/var_0", D, ff), _w("ffw_gating_2/var_0", D, ff),
               _w("ffw_linear/var_0", ff, D)]
    graph = _composite("block", "GemmaDecoderBlock", weights, [(None, T, D)], (None, T, D))
    expected = (T * D * H * HD * 2 + T * D * kv_heads * HD * 2 + T * T * 2 * H * HD + T * 3 * D * ff)
    assert count_macs(graph).layer("block") == expected


def test_composite_needs_known_tokens_and_a_complete_attention():
    weights = [_w("attn/query/kernel", D, H, HD), _w("attn/key/kernel", D, H, HD),
               _w("attn/value/kernel", D, H, HD), _w("attn/attention_output/kernel", H, HD, D)]
    assert count_macs(_composite("b", "Custom", weights, [(None, T, D)], (None, T, D))).layer("b") is not None
    assert count_macs(_composite("b", "Custom", weights, [(None, None, D)], (None, None, D))).layer("b") is None
    assert count_macs(_composite("b", "Custom", weights[:3], [(None, T, D)], (None, T, D))).layer("b") is None
    flat = [_w("kernel", D, D)]  # a custom layer with its own weights, not sublayers: unknown
    assert count_macs(_composite("b", "Custom", flat, [(None, T, D)], (None, T, D))).layer("b") is None


def test_keras_hub_embeddings():
    vocab = 50
    emb = [_w("embeddings", vocab, D)]
    lookup = _composite("tok", "ReversibleEmbedding", emb, [(None, T)], (None, T, D))
    assert count_macs(lookup).layer("tok") == 0
    logits = _composite("tok", "ReversibleEmbedding", emb, [(None, T, D)], (None, T, vocab))
    assert count_macs(logits).layer("tok") == T * D * vocab
    pos = _composite("pos", "PositionEmbedding", [_w("embeddings", 32, D)], [(None, T, D)], (None, T, D))
    assert count_macs(pos).layer("pos") == 0
