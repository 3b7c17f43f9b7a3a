"""Oracle tests for the static Keras output-shape rules (inspector.loaders.keras_shapes).

Every case builds one real layer with Keras 3 (and, for the layers Keras 2 has, with
tf_keras), calls it on ``Input`` tensors, and takes the output shapes Keras itself
reports.  The layer is then serialized exactly as a model file would store it
(``keras.layers.serialize`` for a Keras 3 ``config.json``; ``tf_keras.layers.serialize(...,
use_legacy_format=True)`` for a Keras 2 ``.h5`` ``model_config``), round-tripped
through JSON, and handed to :func:`infer` with the input shapes.  No expected shape is
written down by hand.

The graph walker :func:`fill_shapes` is checked on graphs built from live Keras models
(a chain, branches, a shared layer called on two shapes, nested models, ResNet50) and
from a Keras 2 ``model_config`` (MobileNetV3 with its TF-op layers), plus hand-built
graphs for what no Keras model has (an unknown or custom layer class, malformed
wiring, a 5000-layer chain, models nested a thousand levels deep).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest

from inspector.ir import Inbound, Layer, ModelGraph
from inspector.loaders.keras_shapes import MAX_NESTING, fill_shapes, has_rule, infer, supported_layers

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


# -- the cases ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    make: Callable[[Any], Any] | None
    """Builds the layer from a ``layers`` module (``keras.layers`` or ``tf_keras.layers``);
    ``None`` for layers Keras 3 no longer has."""
    inputs: tuple[tuple[Any, ...], ...]
    """Input shapes without the batch dimension."""
    dtype: str = "float32"
    call: str = "single"
    """``single``: layer(x); ``list``: layer([x, y]); ``args``: layer(x, y)."""
    k2: bool = False
    """Also run against Keras 2 (tf_keras)."""
    k2_make: Callable[[Any], Any] | None = field(default=None)
    """A Keras 2 spelling when the constructor differs."""


CASES: list[Case] = []


def case(id: str, make: Callable[[Any], Any] | None, *inputs: tuple[Any, ...], **kw: Any) -> None:
    CASES.append(Case(id, make, tuple(inputs), **kw))


# Dense and friends
case("Dense-2d", lambda L: L.Dense(7), (5,), k2=True)
case("Dense-3d", lambda L: L.Dense(4, activation="relu"), (3, 5), k2=True)
case("Dense-unknown-time", lambda L: L.Dense(4), (None, 6), k2=True)
case("EinsumDense-matmul", lambda L: L.EinsumDense("ab,bc->ac", output_shape=16, bias_axes="c"), (8,), k2=True)
case("EinsumDense-3d-partial", lambda L: L.EinsumDense("abc,cd->abd", output_shape=(None, 64)), (10, 32))
case("EinsumDense-3d-full", lambda L: L.EinsumDense("abc,cd->abd", output_shape=(10, 64)), (10, 32), k2=True)
case("EinsumDense-left-ellipsis", lambda L: L.EinsumDense("...b,bc->...c", output_shape=4), (3, 5, 8), k2=True)
case("EinsumDense-right-ellipsis", lambda L: L.EinsumDense("ab...,bc->ac...", output_shape=4), (5, 3), k2=True)
case("EinsumDense-split-heads", lambda L: L.EinsumDense("abc,cde->abde", output_shape=(7, 2, 4)), (7, 5), k2=True)
case("Embedding", lambda L: L.Embedding(100, 8), (10,), dtype="int32", k2=True)
case("Embedding-unknown-length", lambda L: L.Embedding(100, 8), (None,), dtype="int32", k2=True)
case("Embedding-input-length", None, (10,), dtype="int32", k2=True, k2_make=lambda L: L.Embedding(100, 8, input_length=10))
case("Embedding-input-length-on-unknown", None, (None,), dtype="int32", k2=True,
     k2_make=lambda L: L.Embedding(100, 8, input_length=10))
case("Embedding-2d-ids", lambda L: L.Embedding(50, 3), (3, 4), dtype="int32", k2=True)
case("Identity", lambda L: L.Identity(), (3, 4))
case("Lambda-declared-shape", lambda L: L.Lambda(lambda x: x[:, :3], output_shape=(3,)), (5,), k2=True)

# Convolutions
case("Conv1D-valid", lambda L: L.Conv1D(4, 3), (20, 2), k2=True)
case("Conv1D-same-stride2-odd", lambda L: L.Conv1D(4, 3, strides=2, padding="same"), (21, 2), k2=True)
case("Conv1D-causal-dilated", lambda L: L.Conv1D(4, 3, padding="causal", dilation_rate=2), (20, 2), k2=True)
case("Conv1D-unknown-length", lambda L: L.Conv1D(4, 5, strides=3), (None, 2), k2=True)
case("Conv1D-channels-first", lambda L: L.Conv1D(4, 3, strides=2, data_format="channels_first"), (2, 17), k2=True)
case("Conv2D-valid", lambda L: L.Conv2D(8, 3), (32, 32, 3), k2=True)
case("Conv2D-same-rect", lambda L: L.Conv2D(8, (3, 5), strides=(2, 1), padding="same"), (31, 17, 3), k2=True)
case("Conv2D-valid-stride2", lambda L: L.Conv2D(8, 3, strides=2), (224, 224, 3), k2=True)
case("Conv2D-7x7-stride2-odd", lambda L: L.Conv2D(8, 7, strides=2), (229, 230, 3), k2=True)
case("Conv2D-dilated", lambda L: L.Conv2D(8, 3, dilation_rate=2), (15, 15, 3), k2=True)
case("Conv2D-dilated-same", lambda L: L.Conv2D(8, 3, dilation_rate=(2, 3), padding="same"), (15, 16, 3), k2=True)
case("Conv2D-channels-first", lambda L: L.Conv2D(8, 3, data_format="channels_first"), (3, 16, 16), k2=True)
case("Conv2D-groups", lambda L: L.Conv2D(6, 3, groups=2), (10, 10, 4), k2=True)
case("Conv2D-unknown-spatial", lambda L: L.Conv2D(8, 3, strides=2, padding="same"), (None, None, 3), k2=True)
case("Conv3D-valid", lambda L: L.Conv3D(4, 3), (8, 9, 10, 2), k2=True)
case("Conv3D-same-mixed", lambda L: L.Conv3D(4, (3, 1, 2), strides=(2, 1, 2), padding="same"), (7, 8, 9, 1), k2=True)
case("Conv3D-channels-first", lambda L: L.Conv3D(4, 2, strides=2, data_format="channels_first"), (2, 7, 8, 9), k2=True)
case("Conv1DTranspose-valid", lambda L: L.Conv1DTranspose(4, 3), (10, 2), k2=True)
case("Conv1DTranspose-same-stride2", lambda L: L.Conv1DTranspose(4, 3, strides=2, padding="same"), (10, 2), k2=True)
case("Conv1DTranspose-output-padding", lambda L: L.Conv1DTranspose(4, 3, strides=2, output_padding=1), (9, 2), k2=True)
case("Conv1DTranspose-dilated", lambda L: L.Conv1DTranspose(4, 3, dilation_rate=2), (9, 2), k2=True)
case("Conv2DTranspose-same", lambda L: L.Conv2DTranspose(8, 3, strides=2, padding="same"), (7, 7, 4), k2=True)
case("Conv2DTranspose-valid-k4", lambda L: L.Conv2DTranspose(8, 4, strides=2), (7, 6, 4), k2=True)
case("Conv2DTranspose-same-outpad", lambda L: L.Conv2DTranspose(8, 3, strides=2, padding="same", output_padding=1), (7, 7, 4), k2=True)
case("Conv2DTranspose-valid-outpad", lambda L: L.Conv2DTranspose(8, 3, strides=3, output_padding=2), (5, 4, 4), k2=True)
case("Conv2DTranspose-stride-gt-kernel", lambda L: L.Conv2DTranspose(8, 2, strides=3), (5, 4, 4), k2=True)
case("Conv2DTranspose-even-kernel-same-outpad", lambda L: L.Conv2DTranspose(8, (4, 2), strides=(3, 2), padding="same", output_padding=(1, 0)), (5, 4, 4), k2=True)
case("Conv2DTranspose-channels-first", lambda L: L.Conv2DTranspose(8, 3, strides=2, data_format="channels_first"), (4, 5, 6), k2=True)
case("Conv2DTranspose-unknown", lambda L: L.Conv2DTranspose(8, 3, strides=2, padding="same"), (None, 5, 4), k2=True)
case("Conv3DTranspose-same", lambda L: L.Conv3DTranspose(2, 3, strides=2, padding="same"), (4, 5, 6, 1), k2=True)
case("Conv3DTranspose-outpad", lambda L: L.Conv3DTranspose(2, 3, strides=2, output_padding=(1, 0, 1)), (4, 5, 6, 1), k2=True)
case("DepthwiseConv2D", lambda L: L.DepthwiseConv2D(3), (16, 16, 4), k2=True)
case("DepthwiseConv2D-same-multiplier", lambda L: L.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2), (15, 15, 3), k2=True)
case("DepthwiseConv2D-channels-first", lambda L: L.DepthwiseConv2D((3, 2), data_format="channels_first"), (3, 9, 8), k2=True)
case("DepthwiseConv2D-dilated", lambda L: L.DepthwiseConv2D(3, dilation_rate=2), (12, 12, 2), k2=True)
case("DepthwiseConv1D", lambda L: L.DepthwiseConv1D(3, strides=2, padding="same", depth_multiplier=3), (20, 2), k2=True)
case("SeparableConv2D", lambda L: L.SeparableConv2D(8, 3), (16, 16, 3), k2=True)
case("SeparableConv2D-same-stride2", lambda L: L.SeparableConv2D(8, 3, strides=2, padding="same", depth_multiplier=2), (15, 16, 3), k2=True)
case("SeparableConv1D", lambda L: L.SeparableConv1D(5, 3, padding="same", strides=2), (19, 4), k2=True)
case("SeparableConv1D-dilated", lambda L: L.SeparableConv1D(5, 3, dilation_rate=3), (19, 4), k2=True)

# Pooling
case("MaxPooling1D", lambda L: L.MaxPooling1D(), (10, 3), k2=True)
case("MaxPooling1D-same-odd", lambda L: L.MaxPooling1D(pool_size=3, strides=2, padding="same"), (11, 3), k2=True)
case("AveragePooling1D-channels-first", lambda L: L.AveragePooling1D(2, data_format="channels_first"), (3, 11), k2=True)
case("MaxPooling2D-odd", lambda L: L.MaxPooling2D(), (7, 7, 3), k2=True)
case("MaxPooling2D-3s2", lambda L: L.MaxPooling2D(3, strides=2), (112, 112, 4), k2=True)
case("MaxPooling2D-3s2-same", lambda L: L.MaxPooling2D(3, strides=2, padding="same"), (113, 113, 4), k2=True)
case("AveragePooling2D-rect", lambda L: L.AveragePooling2D((2, 3)), (8, 9, 2), k2=True)
case("AveragePooling2D-channels-first", lambda L: L.AveragePooling2D(2, data_format="channels_first"), (3, 8, 9), k2=True)
case("MaxPooling2D-unknown", lambda L: L.MaxPooling2D(), (None, 8, 3), k2=True)
case("MaxPooling3D", lambda L: L.MaxPooling3D(), (8, 8, 8, 1), k2=True)
case("AveragePooling3D-same", lambda L: L.AveragePooling3D(3, strides=3, padding="same"), (10, 7, 5, 2), k2=True)
case("GlobalAveragePooling2D", lambda L: L.GlobalAveragePooling2D(), (7, 7, 32), k2=True)
case("GlobalAveragePooling2D-keepdims", lambda L: L.GlobalAveragePooling2D(keepdims=True), (7, 7, 32), k2=True)
case("GlobalMaxPooling2D-channels-first", lambda L: L.GlobalMaxPooling2D(data_format="channels_first"), (5, 7, 7), k2=True)
case("GlobalMaxPooling1D", lambda L: L.GlobalMaxPooling1D(), (10, 4), k2=True)
case("GlobalAveragePooling1D-keepdims", lambda L: L.GlobalAveragePooling1D(keepdims=True), (10, 4), k2=True)
case("GlobalAveragePooling3D-cf-keepdims", lambda L: L.GlobalAveragePooling3D(data_format="channels_first", keepdims=True), (2, 3, 4, 5), k2=True)
case("GlobalMaxPooling3D", lambda L: L.GlobalMaxPooling3D(), (2, 3, 4, 5), k2=True)
case("AdaptiveAveragePooling2D", lambda L: L.AdaptiveAveragePooling2D((2, 3)), (8, 9, 4))
case("AdaptiveMaxPooling1D", lambda L: L.AdaptiveMaxPooling1D(4), (16, 3))

# Normalization and activations
case("BatchNormalization", lambda L: L.BatchNormalization(), (7, 7, 3), k2=True)
case("BatchNormalization-axis1", lambda L: L.BatchNormalization(axis=1), (3, 7, 7), k2=True)
case("LayerNormalization", lambda L: L.LayerNormalization(), (5, 8), k2=True)
case("GroupNormalization", lambda L: L.GroupNormalization(groups=2), (6, 6, 4), k2=True)
case("UnitNormalization", lambda L: L.UnitNormalization(), (5, 8), k2=True)
case("RMSNormalization", lambda L: L.RMSNormalization(), (5, 8))
case("Activation", lambda L: L.Activation("relu"), (4, 5), k2=True)
case("Activation-softmax", lambda L: L.Activation("softmax"), (4,), k2=True)
case("ReLU", lambda L: L.ReLU(max_value=6.0), (4, 5), k2=True)
case("LeakyReLU", lambda L: L.LeakyReLU(0.2), (4, 5), k2=True)
case("PReLU", lambda L: L.PReLU(shared_axes=[1]), (4, 5), k2=True)
case("ELU", lambda L: L.ELU(), (4, 5), k2=True)
case("Softmax", lambda L: L.Softmax(axis=1), (4, 5), k2=True)
case("ThresholdedReLU", None, (4, 5), k2=True, k2_make=lambda L: L.ThresholdedReLU(theta=0.5))

# Merging (with broadcasting)
case("Add", lambda L: L.Add(), (4, 5), (4, 5), call="list", k2=True)
case("Add-broadcast-ones", lambda L: L.Add(), (4, 5), (1, 5), call="list", k2=True)
case("Add-three", lambda L: L.Add(), (3,), (3,), (3,), call="list", k2=True)
case("Add-unknown-dim", lambda L: L.Add(), (None, 5), (4, 5), call="list", k2=True)
case("Add-unknown-against-one", lambda L: L.Add(), (1, None), (None, 5), call="list", k2=True)
case("Multiply-unknown-broadcast", lambda L: L.Multiply(), (None, None), (3, 1), call="list", k2=True)
case("Add-lower-rank", lambda L: L.Add(), (4, 5), (5,), call="list", k2=True)
case("Subtract", lambda L: L.Subtract(), (3, 2), (3, 2), call="list", k2=True)
case("Multiply-broadcast", lambda L: L.Multiply(), (2, 3, 4), (1, 3, 1), call="list", k2=True)
case("Average", lambda L: L.Average(), (6,), (6,), call="list", k2=True)
case("Maximum", lambda L: L.Maximum(), (2, 6), (2, 6), call="list", k2=True)
case("Minimum-broadcast", lambda L: L.Minimum(), (2, 1), (1, 6), call="list", k2=True)
case("Concatenate", lambda L: L.Concatenate(), (4, 5), (4, 3), call="list", k2=True)
case("Concatenate-axis1", lambda L: L.Concatenate(axis=1), (4, 5), (2, 5), call="list", k2=True)
case("Concatenate-axis1-unknown", lambda L: L.Concatenate(axis=1), (None, 5), (2, 5), call="list", k2=True)
case("Concatenate-unknown-other-dims", lambda L: L.Concatenate(), (None, None, 5), (None, 4, 3), call="list", k2=True)
case("Concatenate-three-channels", lambda L: L.Concatenate(axis=-1), (4, 4, 1), (4, 4, 2), (4, 4, 3), call="list", k2=True)
case("Dot-vectors", lambda L: L.Dot(axes=1), (5,), (5,), call="list", k2=True)
case("Dot-axes-pair", lambda L: L.Dot(axes=(2, 2)), (3, 4), (5, 4), call="list", k2=True)
case("Dot-negative-normalize", lambda L: L.Dot(axes=-1, normalize=True), (3, 4), (5, 4), call="list", k2=True)
case("Dot-axes-1", lambda L: L.Dot(axes=[1, 1]), (3, 4), (3, 6), call="list", k2=True)

# Attention
case("Attention", lambda L: L.Attention(), (4, 8), (6, 8), call="list", k2=True)
case("Attention-key", lambda L: L.Attention(), (4, 8), (6, 5), (6, 8), call="list", k2=True)
case("AdditiveAttention", lambda L: L.AdditiveAttention(), (4, 8), (6, 8), call="list", k2=True)
case("MultiHeadAttention", lambda L: L.MultiHeadAttention(num_heads=2, key_dim=4), (5, 8), (7, 6), call="args", k2=True)
case("MultiHeadAttention-output-shape", lambda L: L.MultiHeadAttention(2, 4, output_shape=10), (5, 8), (7, 6), call="args", k2=True)
case("MultiHeadAttention-key", lambda L: L.MultiHeadAttention(2, 4), (5, 8), (7, 6), (7, 3), call="args", k2=True)
case("GroupedQueryAttention", lambda L: L.GroupQueryAttention(4, 4, 2), (5, 8), (7, 8), call="args")

# Reshaping
case("Flatten", lambda L: L.Flatten(), (3, 4, 5), k2=True)
case("Flatten-unknown", lambda L: L.Flatten(), (None, 4), k2=True)
case("Flatten-channels-first", lambda L: L.Flatten(data_format="channels_first"), (3, 4, 5), k2=True)
case("Reshape-minus-one", lambda L: L.Reshape((4, -1)), (2, 3, 4), k2=True)
case("Reshape-flat", lambda L: L.Reshape((-1,)), (2, 3), k2=True)
case("Reshape-unknown", lambda L: L.Reshape((2, -1)), (None, 4), k2=True)
case("Reshape-full", lambda L: L.Reshape((3, 2, 2)), (12,), k2=True)
case("Permute", lambda L: L.Permute((2, 1)), (3, 4), k2=True)
case("Permute-3d", lambda L: L.Permute((3, 1, 2)), (2, 3, 4), k2=True)
case("RepeatVector", lambda L: L.RepeatVector(3), (5,), k2=True)
case("ZeroPadding1D", lambda L: L.ZeroPadding1D(2), (10, 3), k2=True)
case("ZeroPadding1D-asym", lambda L: L.ZeroPadding1D((1, 3)), (10, 3), k2=True)
case("ZeroPadding2D", lambda L: L.ZeroPadding2D(1), (5, 6, 3), k2=True)
case("ZeroPadding2D-asym", lambda L: L.ZeroPadding2D(((1, 2), (3, 4))), (5, 6, 3), k2=True)
case("ZeroPadding2D-cf", lambda L: L.ZeroPadding2D((2, 1), data_format="channels_first"), (3, 5, 6), k2=True)
case("ZeroPadding2D-unknown", lambda L: L.ZeroPadding2D(1), (None, 6, 3), k2=True)
case("ZeroPadding3D", lambda L: L.ZeroPadding3D((1, 2, 3)), (4, 5, 6, 1), k2=True)
case("Cropping1D", lambda L: L.Cropping1D((1, 2)), (10, 3), k2=True)
case("Cropping2D", lambda L: L.Cropping2D(((1, 2), (3, 0))), (10, 12, 3), k2=True)
case("Cropping2D-cf", lambda L: L.Cropping2D(2, data_format="channels_first"), (3, 10, 12), k2=True)
case("Cropping3D", lambda L: L.Cropping3D(1), (5, 6, 7, 2), k2=True)
case("UpSampling1D", lambda L: L.UpSampling1D(3), (5, 2), k2=True)
case("UpSampling2D", lambda L: L.UpSampling2D((2, 3)), (4, 5, 3), k2=True)
case("UpSampling2D-cf-bilinear", lambda L: L.UpSampling2D(2, data_format="channels_first", interpolation="bilinear"), (3, 4, 5), k2=True)
case("UpSampling2D-unknown", lambda L: L.UpSampling2D(2), (None, 5, 3), k2=True)
case("UpSampling2D-unknown-width", lambda L: L.UpSampling2D(2), (5, None, 3), k2=True)
case("UpSampling2D-cf-unknown", lambda L: L.UpSampling2D(2, data_format="channels_first"), (3, None, 5), k2=True)
case("UpSampling1D-unknown", lambda L: L.UpSampling1D(2), (None, 3), k2=True)
case("UpSampling3D-unknown", lambda L: L.UpSampling3D(2), (None, 3, 4, 1), k2=True)
case("UpSampling3D", lambda L: L.UpSampling3D((1, 2, 3)), (2, 3, 4, 1), k2=True)

# Regularization
case("Dropout", lambda L: L.Dropout(0.5), (4, 5), k2=True)
case("SpatialDropout1D", lambda L: L.SpatialDropout1D(0.2), (5, 3), k2=True)
case("SpatialDropout2D", lambda L: L.SpatialDropout2D(0.2), (4, 4, 3), k2=True)
case("SpatialDropout3D", lambda L: L.SpatialDropout3D(0.2), (2, 2, 2, 3), k2=True)
case("GaussianDropout", lambda L: L.GaussianDropout(0.1), (5,), k2=True)
case("GaussianNoise", lambda L: L.GaussianNoise(0.1), (5,), k2=True)
case("AlphaDropout", lambda L: L.AlphaDropout(0.1), (5,), k2=True)
case("ActivityRegularization", lambda L: L.ActivityRegularization(l1=0.1), (5,), k2=True)
case("Masking", lambda L: L.Masking(), (6, 3), k2=True)

# Recurrent
case("SimpleRNN", lambda L: L.SimpleRNN(4), (10, 3), k2=True)
case("SimpleRNN-sequences", lambda L: L.SimpleRNN(4, return_sequences=True), (10, 3), k2=True)
case("SimpleRNN-state", lambda L: L.SimpleRNN(4, return_state=True), (10, 3), k2=True)
case("GRU-state", lambda L: L.GRU(5, return_state=True), (10, 3), k2=True)
case("GRU-sequences-state", lambda L: L.GRU(5, return_sequences=True, return_state=True), (None, 3), k2=True)
case("LSTM", lambda L: L.LSTM(6), (10, 3), k2=True)
case("LSTM-sequences-state", lambda L: L.LSTM(6, return_sequences=True, return_state=True), (10, 3), k2=True)
case("LSTM-unknown-time", lambda L: L.LSTM(6, return_state=True), (None, 3), k2=True)
case("LSTM-time-major", None, (10, 3), k2=True,
     k2_make=lambda L: L.LSTM(6, return_sequences=True, time_major=True))
case("RNN-LSTMCell", lambda L: L.RNN(L.LSTMCell(4), return_state=True), (10, 3), k2=True)
case("RNN-stacked", lambda L: L.RNN([L.GRUCell(3), L.LSTMCell(5)], return_state=True, return_sequences=True), (10, 3), k2=True)
case("Bidirectional-concat", lambda L: L.Bidirectional(L.LSTM(4)), (10, 3), k2=True)
case("Bidirectional-sum-sequences", lambda L: L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode="sum"), (10, 3), k2=True)
case("Bidirectional-mul", lambda L: L.Bidirectional(L.SimpleRNN(3), merge_mode="mul"), (10, 3), k2=True)
case("Bidirectional-ave", lambda L: L.Bidirectional(L.SimpleRNN(3), merge_mode="ave"), (10, 3), k2=True)
case("Bidirectional-none", lambda L: L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode=None), (10, 3), k2=True)
case("Bidirectional-state", lambda L: L.Bidirectional(L.LSTM(4, return_state=True)), (10, 3), k2=True)
case("Bidirectional-none-state", lambda L: L.Bidirectional(L.LSTM(4, return_state=True, return_sequences=True), merge_mode=None), (10, 3), k2=True)
case("Bidirectional-gru-state", lambda L: L.Bidirectional(L.GRU(4, return_state=True), merge_mode="sum"), (10, 3), k2=True)
case("ConvLSTM2D", lambda L: L.ConvLSTM2D(4, 3), (5, 10, 10, 2), k2=True)
case("ConvLSTM2D-sequences-same", lambda L: L.ConvLSTM2D(4, 3, strides=2, padding="same", return_sequences=True), (5, 11, 10, 2), k2=True)
case("ConvLSTM2D-state", lambda L: L.ConvLSTM2D(4, 3, return_state=True), (5, 10, 9, 2), k2=True)
case("ConvLSTM1D", lambda L: L.ConvLSTM1D(3, 3, return_sequences=True), (5, 10, 2), k2=True)
case("TimeDistributed-Dense", lambda L: L.TimeDistributed(L.Dense(3)), (5, 4), k2=True)
case("TimeDistributed-Conv2D", lambda L: L.TimeDistributed(L.Conv2D(4, 3, strides=2)), (5, 10, 11, 2), k2=True)
case("TimeDistributed-Flatten", lambda L: L.TimeDistributed(L.Flatten()), (5, 3, 4), k2=True)
case("TimeDistributed-MaxPooling2D", lambda L: L.TimeDistributed(L.MaxPooling2D()), (None, 8, 8, 2), k2=True)

# Preprocessing
case("Rescaling", lambda L: L.Rescaling(1 / 255.0), (8, 8, 3), k2=True)
case("Normalization", lambda L: L.Normalization(mean=0.0, variance=1.0), (5,), k2=True)
case("Resizing", lambda L: L.Resizing(16, 20), (32, 32, 3), k2=True)
case("Resizing-crop-aspect", lambda L: L.Resizing(12, 8, crop_to_aspect_ratio=True), (32, 30, 3), k2=True)
case("Resizing-channels-first", lambda L: L.Resizing(6, 7, data_format="channels_first"), (3, 10, 10))
case("CenterCrop", lambda L: L.CenterCrop(4, 6), (10, 10, 3), k2=True)
case("RandomCrop", lambda L: L.RandomCrop(5, 6), (10, 12, 3), k2=True)
case("RandomCrop-unknown", lambda L: L.RandomCrop(5, 6), (None, None, 3), k2=True)
case("RandomFlip", lambda L: L.RandomFlip(), (8, 8, 3), k2=True)
case("RandomRotation", lambda L: L.RandomRotation(0.1), (8, 8, 3), k2=True)
case("RandomZoom", lambda L: L.RandomZoom(0.1), (8, 8, 3), k2=True)
case("RandomTranslation", lambda L: L.RandomTranslation(0.1, 0.1), (8, 8, 3), k2=True)
case("RandomContrast", lambda L: L.RandomContrast(0.2), (8, 8, 3), k2=True)
case("RandomBrightness", lambda L: L.RandomBrightness(0.2), (8, 8, 3), k2=True)
case("RandomHeight", None, (8, 9, 3), k2=True, k2_make=lambda L: L.RandomHeight(0.2))
case("RandomWidth", None, (8, 9, 3), k2=True, k2_make=lambda L: L.RandomWidth(0.2))
case("RandomHue", lambda L: L.RandomHue(0.2), (8, 8, 3))
case("RandomSaturation", lambda L: L.RandomSaturation(0.2), (8, 8, 3))
case("RandomGrayscale", lambda L: L.RandomGrayscale(), (8, 8, 3))
case("RandomSharpness", lambda L: L.RandomSharpness(0.2), (8, 8, 3))
case("RandomShear", lambda L: L.RandomShear(0.2), (8, 8, 3))
case("RandomErasing", lambda L: L.RandomErasing(), (8, 8, 3))
case("RandomGaussianBlur", lambda L: L.RandomGaussianBlur(), (8, 8, 3))
case("RandomPerspective", lambda L: L.RandomPerspective(), (8, 8, 3))
case("RandomPosterization", lambda L: L.RandomPosterization(factor=4, value_range=(0, 255)), (8, 8, 3))
case("RandomInvert", lambda L: L.RandomInvert(), (8, 8, 3))
case("RandomColorJitter", lambda L: L.RandomColorJitter(brightness_factor=0.2), (8, 8, 3))
case("RandomColorDegeneration", lambda L: L.RandomColorDegeneration(0.2), (8, 8, 3))
case("RandomElasticTransform", lambda L: L.RandomElasticTransform(), (8, 8, 3))
case("AutoContrast", lambda L: L.AutoContrast(), (8, 8, 3))
case("Equalization", lambda L: L.Equalization(), (8, 8, 3))
case("Solarization", lambda L: L.Solarization(), (8, 8, 3))
case("CategoryEncoding-one-hot", lambda L: L.CategoryEncoding(num_tokens=10, output_mode="one_hot"), (1,), dtype="int32", k2=True)
case("CategoryEncoding-one-hot-seq", lambda L: L.CategoryEncoding(num_tokens=10, output_mode="one_hot"), (3,), dtype="int32")
case("CategoryEncoding-multi-hot", lambda L: L.CategoryEncoding(num_tokens=10, output_mode="multi_hot"), (3,), dtype="int32", k2=True)
case("CategoryEncoding-count", lambda L: L.CategoryEncoding(num_tokens=7, output_mode="count"), (4,), dtype="int32", k2=True)
case("Discretization-int", lambda L: L.Discretization(bin_boundaries=[0.0, 1.0, 2.0]), (5,), k2=True)
case("Discretization-one-hot", lambda L: L.Discretization(bin_boundaries=[0.0, 1.0, 2.0], output_mode="one_hot"), (1,))
case("Discretization-multi-hot", lambda L: L.Discretization(bin_boundaries=[0.0, 1.0], output_mode="multi_hot"), (4,))
case("Hashing", lambda L: L.Hashing(num_bins=8), (3,), dtype="string", k2=True)
case("Hashing-one-hot", lambda L: L.Hashing(num_bins=8, output_mode="one_hot"), (1,), dtype="string", k2=True)
case("Hashing-multi-hot", lambda L: L.Hashing(num_bins=8, output_mode="multi_hot"), (4,), dtype="string", k2=True)
case("StringLookup", lambda L: L.StringLookup(vocabulary=["a", "b", "c"]), (4,), dtype="string", k2=True)
case("StringLookup-multi-hot", lambda L: L.StringLookup(vocabulary=["a", "b", "c"], output_mode="multi_hot"), (4,), dtype="string")
case("StringLookup-one-hot", lambda L: L.StringLookup(vocabulary=["a", "b", "c"], output_mode="one_hot"), (1,), dtype="string")
case("StringLookup-padded", lambda L: L.StringLookup(max_tokens=20, pad_to_max_tokens=True, output_mode="count"), (4,), dtype="string")
case("IntegerLookup", lambda L: L.IntegerLookup(vocabulary=[1, 2, 3]), (4,), dtype="int64", k2=True)
case("IntegerLookup-multi-hot", lambda L: L.IntegerLookup(vocabulary=[1, 2, 3], output_mode="multi_hot"), (4,), dtype="int64")
case("TextVectorization", lambda L: L.TextVectorization(output_sequence_length=7), (1,), dtype="string", k2=True)
case("TextVectorization-unknown-length", lambda L: L.TextVectorization(), (1,), dtype="string")
case("TextVectorization-multi-hot", lambda L: L.TextVectorization(vocabulary=["a", "b"], output_mode="multi_hot"), (1,), dtype="string")


# -- running Keras as the oracle -------------------------------------------------------------


def _jsonable(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if hasattr(obj, "as_list"):  # tf.TensorShape: Keras 2's JSON encoder writes a list
        return obj.as_list()
    if isinstance(obj, (bytes, bytearray)):
        return obj.decode("latin-1")
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def _as_file_stores_it(serialized: dict[str, Any]) -> dict[str, Any]:
    """What a model file holds: JSON, so tuples become lists and numbers plain."""
    return json.loads(json.dumps(serialized, default=_jsonable))


def _shape(tensor: Any) -> tuple[Any, ...]:
    return tuple(None if d is None else int(d) for d in tensor.shape)


def _flatten(out: Any) -> list[Any]:
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in _flatten(o)]
    return [out]


def _run(keras_module: Any, layer: Any, c: Case) -> list[tuple[Any, ...]]:
    inputs = [keras_module.Input(shape=s, dtype=c.dtype) for s in c.inputs]
    if c.call == "list":
        out = layer(inputs)
    elif c.call == "args":
        out = layer(*inputs)
    else:
        out = layer(inputs[0])
    return [_shape(t) for t in _flatten(out)]


@pytest.fixture(scope="session")
def keras3() -> Any:
    import keras

    return keras


@pytest.fixture(scope="session")
def keras2() -> Any:
    import tf_keras

    return tf_keras


K3_CASES = [c for c in CASES if c.make is not None]
K2_CASES = [c for c in CASES if c.k2]


def _check(class_name: str, config: dict[str, Any], c: Case, expected: list[tuple[Any, ...]], version: int) -> None:
    ins = [(None, *s) for s in c.inputs]
    got = infer(class_name, config, ins, keras_version=version)
    assert got == expected, f"{class_name} on {ins}: keras says {expected}, inspector says {got}\nconfig: {config}"


@pytest.mark.parametrize("c", K3_CASES, ids=[c.id for c in K3_CASES])
def test_keras3_oracle(keras3: Any, c: Case) -> None:
    layer = c.make(keras3.layers)
    expected = _run(keras3, layer, c)
    stored = _as_file_stores_it(keras3.layers.serialize(layer))
    _check(stored["class_name"], stored["config"], c, expected, 3)


@pytest.mark.parametrize("c", K2_CASES, ids=[c.id for c in K2_CASES])
def test_keras2_oracle(keras2: Any, c: Case) -> None:
    layer = (c.k2_make or c.make)(keras2.layers)
    expected = _run(keras2, layer, c)
    stored = _as_file_stores_it(keras2.layers.serialize(layer, use_legacy_format=True))
    _check(stored["class_name"], stored["config"], c, expected, 2)


@pytest.mark.parametrize("c", K3_CASES, ids=[c.id for c in K3_CASES])
def test_keras3_legacy_h5_oracle(keras3: Any, c: Case) -> None:
    """Keras 3 writing a legacy ``.h5`` uses its legacy serializer: same shapes."""
    from keras.src.legacy.saving import serialization

    layer = c.make(keras3.layers)
    expected = _run(keras3, layer, c)
    stored = _as_file_stores_it(serialization.serialize_keras_object(layer))
    _check(stored["class_name"], stored["config"], c, expected, 3)


@pytest.mark.parametrize("op", ["nn.relu", "nn.relu6", "nn.silu", "math.sigmoid", "math.tanh", "math.exp"])
def test_keras2_unary_tf_op_layers(keras2: Any, op: str) -> None:
    """Keras 2 wraps ``tf.nn.relu(x)`` & co. in a TFOpLambda layer; element-wise ops keep the shape."""
    import tensorflow as tf

    fn = tf
    for part in op.split("."):
        fn = getattr(fn, part)
    y = fn(keras2.Input((4, 5)))
    stored = _as_file_stores_it(keras2.layers.serialize(y._keras_history[0], use_legacy_format=True))
    assert (stored["class_name"], stored["config"]["function"]) == ("TFOpLambda", op)
    assert infer("TFOpLambda", stored["config"], [(None, 4, 5)], keras_version=2) == [_shape(y)]


BINARY_TF_OPS = {
    "add-tensors": (lambda tf, a, b: a + b, "ab"),
    "sub-scalar": (lambda tf, a, b: a - 2.0, "a"),
    "scalar-times": (lambda tf, a, b: 2.0 * a, "a"),
    "mul-broadcast": (lambda tf, a, b: b * a, "ba"),
    "maximum-scalar": (lambda tf, a, b: tf.maximum(a, 0.0), "a"),
    "truediv-scalar": (lambda tf, a, b: a / 6.0, "a"),
    "squared-difference": (lambda tf, a, b: tf.math.squared_difference(a, b), "ab"),
}


@pytest.mark.parametrize("name", sorted(BINARY_TF_OPS))
def test_keras2_binary_tf_op_layers(keras2: Any, name: str) -> None:
    """Binary element-wise TFOpLambda: tensor operands (also those passed as ``y=``,
    which a loader lists as inbound) broadcast; a constant operand is not a tensor."""
    import tensorflow as tf

    make, order = BINARY_TF_OPS[name]
    a, b = keras2.Input((4, 5)), keras2.Input((1, 5))
    y = make(tf, a, b)
    stored = _as_file_stores_it(keras2.layers.serialize(y._keras_history[0], use_legacy_format=True))
    ins = [_shape({"a": a, "b": b}[k]) for k in order]
    assert infer(stored["class_name"], stored["config"], ins, keras_version=2) == [_shape(y)]


def test_keras2_tf_ops_that_need_call_arguments_stay_unknown(keras2: Any) -> None:
    """``x[:, 1:]``, ``tf.reshape(x, ...)``: the slice or the shape is not in the layer config."""
    import tensorflow as tf

    x = keras2.Input((4, 5))
    for y in (x[:, 1:], tf.reshape(x, (-1, 20)), tf.reduce_mean(x, axis=1)):
        stored = _as_file_stores_it(keras2.layers.serialize(y._keras_history[0], use_legacy_format=True))
        assert infer(stored["class_name"], stored["config"], [(None, 4, 5)], keras_version=2) is None


# -- InputLayer: the batch shape, in both spellings ---------------------------------------------


@pytest.mark.parametrize("shape", [(3, 4), (None, 5), (224, 224, 3)])
def test_input_layer_keras3(keras3: Any, shape: tuple[Any, ...]) -> None:
    tensor = keras3.Input(shape=shape)
    layer = tensor._keras_history[0]
    stored = _as_file_stores_it(keras3.layers.serialize(layer))
    assert "batch_shape" in stored["config"]
    assert infer("InputLayer", stored["config"], []) == [_shape(tensor)]


@pytest.mark.parametrize("shape", [(3, 4), (None, 5), (224, 224, 3)])
def test_input_layer_keras2(keras2: Any, shape: tuple[Any, ...]) -> None:
    tensor = keras2.Input(shape=shape, batch_size=2)
    layer = tensor._keras_history[0]
    stored = _as_file_stores_it(keras2.layers.serialize(layer, use_legacy_format=True))
    assert "batch_input_shape" in stored["config"]
    assert infer("InputLayer", stored["config"], []) == [_shape(tensor)]


# -- contract details that no single Keras call shows ----------------------------------------------


def test_unknown_class_and_unknown_input_give_none() -> None:
    assert infer("MyCustomLayer", {"units": 3}, [(None, 4)]) is None
    assert not has_rule("MyCustomLayer")
    assert infer("Dense", {"units": 3}, [None]) is None
    assert infer("Add", {}, [(None, 3), None]) is None
    assert infer("Dense", {"units": 3}, []) is None


@pytest.mark.parametrize(
    "class_name, config, ins",
    [
        ("Dense", {"units": "many"}, [(None, 4)]),
        ("Conv2D", {"filters": 4, "kernel_size": [3, 3], "padding": "reflect"}, [(None, 8, 8, 3)]),
        ("Conv2D", {"filters": 4, "kernel_size": [9, 9]}, [(None, 4, 4, 3)]),  # empty output
        ("Conv2D", {"filters": 4, "kernel_size": [3, 3], "strides": [0, 0]}, [(None, 8, 8, 3)]),
        ("Reshape", {"target_shape": [5, -1]}, [(None, 12)]),  # 12 is not divisible by 5
        ("Reshape", {"target_shape": [-1, -1]}, [(None, 12)]),
        ("Permute", {"dims": [1, 1]}, [(None, 3, 4)]),
        ("Concatenate", {"axis": 5}, [(None, 3), (None, 4)]),
        ("Add", {}, [(None, 3), (None, 4)]),
        ("TimeDistributed", {"layer": {"class_name": "MyCustom", "config": {}}}, [(None, 5, 3)]),
        ("Bidirectional", {"layer": "nonsense"}, [(None, 5, 3)]),
        ("EinsumDense", {"equation": "not an equation", "output_shape": 3}, [(None, 4)]),
        ("InputLayer", {"batch_shape": "abc"}, []),
        ("Dense", None, [(None, 4)]),
        (["Dense"], {"units": 3}, [(None, 4)]),
        ("Dense", {"units": 3}, [(None, True)]),
        ("Dense", {"units": 3}, ["abc"]),
    ],
)
def test_bad_configs_give_none_never_raise(class_name: str, config: Any, ins: list[Any]) -> None:
    assert infer(class_name, config, ins) is None


def test_symbolic_dims_are_copied_not_computed() -> None:
    assert infer("Dense", {"units": 3}, [("N", "T", 8)]) == [("N", "T", 3)]
    assert infer("Conv1D", {"filters": 2, "kernel_size": [3], "padding": "valid"}, [("N", "L", 4)]) == [("N", None, 2)]
    assert infer("Flatten", {}, [("N", 3, 4)]) == [("N", 12)]
    assert infer("Flatten", {}, [("N", "H", 4)]) == [("N", None)]


def test_docstring_examples() -> None:
    import doctest

    import inspector.loaders.keras_shapes as module

    assert doctest.testmod(module).failed == 0


def test_rules_cover_the_issue_list() -> None:
    wanted = """Dense EinsumDense Conv1D Conv2D Conv3D Conv1DTranspose Conv2DTranspose Conv3DTranspose
    DepthwiseConv1D DepthwiseConv2D SeparableConv1D SeparableConv2D MaxPooling1D MaxPooling2D MaxPooling3D
    AveragePooling1D AveragePooling2D AveragePooling3D GlobalMaxPooling1D GlobalMaxPooling2D GlobalMaxPooling3D
    GlobalAveragePooling1D GlobalAveragePooling2D GlobalAveragePooling3D BatchNormalization LayerNormalization
    GroupNormalization UnitNormalization Activation ReLU LeakyReLU PReLU ELU Softmax ThresholdedReLU Add Subtract
    Multiply Average Maximum Minimum Concatenate Dot Flatten Reshape Permute RepeatVector ZeroPadding1D
    ZeroPadding2D ZeroPadding3D Cropping1D Cropping2D Cropping3D UpSampling1D UpSampling2D UpSampling3D Dropout
    SpatialDropout1D SpatialDropout2D SpatialDropout3D GaussianDropout GaussianNoise AlphaDropout
    ActivityRegularization Masking Embedding SimpleRNN LSTM GRU ConvLSTM2D Bidirectional TimeDistributed Rescaling
    Normalization Resizing CenterCrop RandomFlip RandomRotation RandomZoom RandomTranslation RandomContrast
    RandomBrightness RandomCrop Identity InputLayer Attention AdditiveAttention MultiHeadAttention
    CategoryEncoding Discretization Hashing StringLookup IntegerLookup TextVectorization""".split()
    assert sorted(set(wanted) - set(supported_layers())) == []


# -- fill_shapes on graphs built from live Keras models -----------------------------------------------


def _graph_from_keras3(model: Any, keras: Any) -> tuple[ModelGraph, dict[tuple[str, int], list[tuple[Any, ...]]]]:
    """A ModelGraph with the wiring of a live Keras 3 model and no shapes except the
    inputs' batch shapes (in the InputLayer config); plus Keras' own shapes per call,
    keyed by (layer path, call index)."""
    from keras.src.ops.function import make_node_key

    functional = getattr(model, "_functional", None) or model  # a Sequential wraps one
    kept: dict[tuple[int, int], int] = {}
    for op in functional.operations:
        n = 0
        for i, _node in enumerate(op._inbound_nodes):
            if make_node_key(op, i) in functional._nodes:
                kept[(id(op), i)] = n
                n += 1

    def ref(tensor: Any) -> Inbound:
        op, node_index, tensor_index = tensor._keras_history
        return Inbound(op.name, kept[(id(op), node_index)], tensor_index)

    graph = ModelGraph(name=model.name, format="keras", metadata={"keras_version": keras.__version__})
    expected: dict[tuple[str, int], list[tuple[Any, ...]]] = {}
    for op in functional.operations:
        stored = _as_file_stores_it(keras.layers.serialize(op))
        layer = Layer(name=op.name, type=stored["class_name"], config=stored["config"])
        for i, node in enumerate(op._inbound_nodes):
            if (id(op), i) not in kept:
                continue
            if op.__class__.__name__ != "InputLayer":
                layer.inbound.append([ref(t) for t in _flatten(node.arguments.keras_tensors)])
            expected[(op.name, kept[(id(op), i)])] = [_shape(t) for t in _flatten(node.outputs)]
        if isinstance(op, keras.Model):
            layer.subgraphs["model"], inner = _graph_from_keras3(op, keras)
            expected.update({(f"{op.name}/{k[0]}", k[1]): v for k, v in inner.items()})
        graph.layers.append(layer)
    graph.inputs = [ref(t) for t in _flatten(functional.inputs)]
    graph.outputs = [ref(t) for t in _flatten(functional.outputs)]
    return graph, expected


def _assert_matches(graph: ModelGraph, expected: dict[tuple[str, int], list[tuple[Any, ...]]]) -> None:
    got: dict[tuple[str, int], list[Any]] = {}
    for path, layer in graph.walk():
        for i, shapes in enumerate(layer.node_shapes):
            got[(path, i)] = shapes
    assert {k: got.get(k) for k in expected} == expected


def test_fill_chain_and_branches(keras3: Any) -> None:
    L = keras3.layers
    x = keras3.Input((32, 32, 3))
    y = L.Conv2D(8, 3, strides=2, padding="same")(x)
    a = L.Conv2D(8, 1)(y)
    b = L.MaxPooling2D(1)(y)
    z = L.Add()([a, b])
    z = L.Concatenate()([z, y])
    z = L.GlobalAveragePooling2D()(z)
    out1 = L.Dense(10)(z)
    out2 = L.Dense(1)(z)
    model = keras3.Model(x, [out1, out2])
    graph, expected = _graph_from_keras3(model, keras3)
    fill_shapes(graph)
    _assert_matches(graph, expected)
    assert not any(layer.notes for layer in graph.layers)


def test_fill_shared_layer_two_shapes(keras3: Any) -> None:
    L = keras3.layers
    big, small = keras3.Input((32, 32, 3)), keras3.Input((16, 17, 3))
    shared = L.Conv2D(4, 3, name="shared")
    pool = L.GlobalMaxPooling2D(name="pool")
    merged = L.Concatenate()([pool(shared(big)), pool(shared(small))])
    model = keras3.Model([big, small], merged)
    graph, expected = _graph_from_keras3(model, keras3)
    fill_shapes(graph)
    _assert_matches(graph, expected)
    conv = graph.layer("shared")
    assert len(conv.node_shapes) == 2 and conv.has_multiple_shapes


def test_fill_nested_model(keras3: Any) -> None:
    L = keras3.layers
    inner_in = keras3.Input((None, None, 3))
    inner = keras3.Model(inner_in, L.Conv2D(6, 3, strides=2, name="stem")(inner_in), name="backbone")
    x = keras3.Input((20, 21, 3))
    seq = keras3.Sequential([keras3.Input((540,)), L.Dense(5), L.Dense(2)], name="head")
    model = keras3.Model(x, seq(L.Flatten()(inner(x))))
    graph, expected = _graph_from_keras3(model, keras3)
    fill_shapes(graph)
    _assert_matches(graph, expected)
    # The backbone's own layers keep its unknown spatial sizes; its row has the real ones.
    assert expected[("backbone/stem", 0)][0][1] is None
    assert expected[("backbone", 0)][0][1] == 9


def test_fill_keeps_recorded_shapes() -> None:
    graph = ModelGraph(name="m", format="keras")
    graph.layers = [
        Layer("in", "InputLayer", {"batch_shape": [None, 4]}),
        Layer("d", "Dense", {"units": 3}, inbound=[[Inbound("in")]], node_shapes=[[(7, 3)]]),
        Layer("e", "Dense", {"units": 2}, inbound=[[Inbound("d")]]),
    ]
    fill_shapes(graph)
    assert graph.layer("in").node_shapes == [[(None, 4)]]
    assert graph.layer("d").node_shapes == [[(7, 3)]]  # recorded, not recomputed
    assert graph.layer("e").node_shapes == [[(7, 2)]]  # computed from the recorded shape


def test_fill_unknown_layer_gets_note_and_none() -> None:
    graph = ModelGraph(name="m", format="keras-h5")
    graph.layers = [
        Layer("in", "InputLayer", {"batch_input_shape": [None, 4]}),
        Layer("custom", "MyLayer", {}, inbound=[[Inbound("in")]]),
        Layer("d", "Dense", {"units": 3}, inbound=[[Inbound("custom")]]),
    ]
    fill_shapes(graph)
    custom, dense = graph.layer("custom"), graph.layer("d")
    assert custom.node_shapes == [[None]]
    assert custom.notes == ["no output-shape rule for MyLayer"]
    assert dense.node_shapes == [[None]]
    assert dense.notes == []  # its rule is fine; only its input is unknown


def test_fill_custom_class_with_a_keras_name_is_not_guessed() -> None:
    graph = ModelGraph(name="m", format="keras")
    graph.layers = [
        Layer("in", "InputLayer", {"batch_shape": [None, 4]}, module="keras.layers"),
        Layer("mine", "Dense", {"units": 3}, inbound=[[Inbound("in")]], module="my_package.layers"),
        Layer("lam", "Lambda", {"function": {}}, inbound=[[Inbound("in")]], module="keras.layers"),
    ]
    fill_shapes(graph)
    assert graph.layer("mine").node_shapes == [[None]]
    assert graph.layer("mine").notes == ["no output-shape rule for Dense"]
    assert graph.layer("lam").node_shapes == [[None]]
    assert graph.layer("lam").notes == ["no output-shape rule for Lambda"]


def test_fill_survives_malformed_graphs() -> None:
    """What a loader may build from a hostile file: dangling references, a cycle,
    a config that is not a dict, a model nested inside itself."""
    graph = ModelGraph(name="m", format="keras")
    looped = ModelGraph(name="loop", format="keras")
    looped.layers = [
        Layer("lin", "InputLayer", {"batch_shape": [None, 2]}),
        Layer("self", "Functional", {}, inbound=[[Inbound("lin")]], subgraphs={"model": looped}),
    ]
    looped.inputs, looped.outputs = [Inbound("lin")], [Inbound("self")]
    graph.layers = [
        Layer("in", "InputLayer", ["not", "a", "dict"]),  # type: ignore[arg-type]
        Layer("dangling", "Dense", {"units": 3}, inbound=[[Inbound("nowhere", 7, 9)]]),
        Layer("a", "Dense", {"units": 3}, inbound=[[Inbound("b")]]),
        Layer("b", "Dense", {"units": 3}, inbound=[[Inbound("a")]]),
        Layer("weird", "Dense", {"units": 3}, inbound=[["not an Inbound"]]),  # type: ignore[list-item]
        Layer("loop", "Functional", {}, inbound=[[Inbound("in")]], subgraphs={"model": looped}),
    ]
    fill_shapes(graph)
    for name in ("in", "dangling", "a", "b", "weird", "loop"):
        assert graph.layer(name).node_shapes == [[None]], name


def test_fill_leaves_uncalled_layers_alone() -> None:
    """A layer that was never called has no output in Keras either; Keras 3 configs
    number a nested model's first call 1 (node 0 is its construction), which a
    loader may keep by leaving call 0 empty."""
    inner = _nested_chain(0)
    graph = ModelGraph(name="m", format="keras")
    graph.layers = [
        Layer("in", "InputLayer", {"batch_shape": [None, 4]}),
        Layer("unused", "Dense", {"units": 3}),
        Layer("m0", "Functional", {}, inbound=[[], [Inbound("in")]], subgraphs={"model": inner}),
        Layer("out", "Dense", {"units": 2}, inbound=[[Inbound("m0", 1, 0)]]),
    ]
    fill_shapes(graph)
    assert graph.layer("unused").node_shapes == [] and graph.layer("unused").notes == []
    assert graph.layer("m0").node_shapes == [[], [(None, 3)]]
    assert graph.layer("out").node_shapes == [[(None, 2)]]


def test_fill_sequential_without_input_layer() -> None:
    """Old Keras 2 Sequential configs: the first layer carries batch_input_shape."""
    graph = ModelGraph(name="m", format="keras-h5", kind="sequential")
    graph.layers = [
        Layer("c", "Conv2D", {"filters": 4, "kernel_size": [3, 3], "batch_input_shape": [None, 10, 10, 1]}),
        Layer("f", "Flatten", {}, inbound=[[Inbound("c")]]),
    ]
    fill_shapes(graph)
    assert graph.layer("c").node_shapes == [[(None, 8, 8, 4)]]
    assert graph.layer("f").node_shapes == [[(None, 256)]]


def test_fill_deep_chain_is_fast_and_iterative() -> None:
    graph = ModelGraph(name="deep", format="keras-h5")
    graph.layers.append(Layer("in", "InputLayer", {"batch_input_shape": [None, 8]}))
    for i in range(5000):
        graph.layers.append(Layer(f"d{i}", "Dense", {"units": 8 + i % 3}, inbound=[[Inbound(graph.layers[-1].name)]]))
    start = time.perf_counter()
    fill_shapes(graph)
    elapsed = time.perf_counter() - start
    assert graph.layers[-1].node_shapes == [[(None, 8 + 4999 % 3)]]
    assert elapsed < 2.0


def _nested_chain(depth: int) -> ModelGraph:
    """``depth`` models nested in each other, the innermost a Dense(3)."""
    inner = ModelGraph(name="m0", format="keras")
    inner.layers = [
        Layer("in0", "InputLayer", {"batch_shape": [None, 4]}),
        Layer("dense", "Dense", {"units": 3}, inbound=[[Inbound("in0")]]),
    ]
    inner.inputs, inner.outputs = [Inbound("in0")], [Inbound("dense")]
    for level in range(1, depth + 1):
        outer = ModelGraph(name=f"m{level}", format="keras")
        outer.layers = [
            Layer(f"in{level}", "InputLayer", {"batch_shape": [None, 4]}),
            Layer(f"m{level - 1}", "Functional", {}, inbound=[[Inbound(f"in{level}")]], subgraphs={"model": inner}),
        ]
        outer.inputs, outer.outputs = [Inbound(f"in{level}")], [Inbound(f"m{level - 1}")]
        inner = outer
    return inner


def test_fill_nested_models_moderately_deep() -> None:
    graph = _nested_chain(20)
    fill_shapes(graph)
    assert graph.layers[-1].node_shapes == [[(None, 3)]]


def test_fill_pathological_nesting_does_not_recurse_forever() -> None:
    graph = _nested_chain(MAX_NESTING + 1000)
    fill_shapes(graph)  # must not raise RecursionError
    assert graph.layers[-1].node_shapes == [[None]]
    notes, level = [], graph
    while level.layers[-1].subgraph is not None:  # iterate: walk() itself recurses
        notes += level.layers[-1].notes
        level = level.layers[-1].subgraph
    assert any("nested deeper" in note for note in notes)


def test_fill_nested_model_called_on_other_shapes(keras3: Any) -> None:
    """A nested model with a fixed input size called on a bigger tensor: Keras runs
    the inner layers on the actual tensor, so the outer row shows that shape."""
    L = keras3.layers
    inner_in = keras3.Input((None, 4))
    inner = keras3.Model(inner_in, L.Conv1D(2, 3)(inner_in), name="inner")
    x = keras3.Input((10, 4))
    model = keras3.Model(x, inner(x))
    graph, expected = _graph_from_keras3(model, keras3)
    fill_shapes(graph)
    _assert_matches(graph, expected)


# -- a whole architecture ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def resnet50(keras3: Any) -> Any:
    return keras3.applications.ResNet50(weights=None)


def test_fill_resnet50_matches_keras_and_is_fast(keras3: Any, resnet50: Any) -> None:
    graph, expected = _graph_from_keras3(resnet50, keras3)
    start = time.perf_counter()
    fill_shapes(graph)
    elapsed = time.perf_counter() - start
    _assert_matches(graph, expected)
    assert elapsed < 0.25, f"fill_shapes took {elapsed * 1000:.1f} ms on ResNet50"


def _refs_of_keras2_node(node: list[Any]) -> list[Inbound]:
    """The tensors of one Keras 2 ``inbound_nodes`` entry, as a loader must read them:
    a node is a list of ``[layer, node, tensor, kwargs]`` (or one such entry alone, for
    TF-op layers); tensors passed as keyword arguments (``y=``) count as inputs, and
    ``_CONSTANT_VALUE`` entries are constants, not layers."""
    if node and isinstance(node[0], str):
        node = [node]
    refs = []
    for entry in node:
        if entry[0] != "_CONSTANT_VALUE":
            refs.append(Inbound(entry[0], entry[1], entry[2]))
        kwargs = entry[3] if len(entry) > 3 and isinstance(entry[3], dict) else {}
        for value in kwargs.values():
            if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
                refs.append(Inbound(value[0], value[1], value[2]))
    return refs


def test_fill_keras2_mobilenet_from_h5_config(keras2: Any) -> None:
    """The Keras 2 h5 ``model_config`` wiring of a real architecture with TF-op layers
    (MobileNetV3's hard-swish is ``x + 3.0`` … ``* (1/6)``), filled from the input
    shape alone, matches Keras 2's own shapes for every layer."""
    model = keras2.applications.MobileNetV3Small(weights=None, input_shape=(96, 96, 3), alpha=0.75)
    config = _as_file_stores_it(json.loads(model.to_json()))["config"]
    graph = ModelGraph(name=config["name"], format="keras-h5", metadata={"keras_version": keras2.__version__})
    for entry in config["layers"]:
        layer = Layer(entry["name"], entry["class_name"], entry["config"])
        layer.inbound = [_refs_of_keras2_node(node) for node in entry["inbound_nodes"]]
        graph.layers.append(layer)
    assert {layer.type for layer in graph.layers} >= {"TFOpLambda", "Multiply", "Rescaling", "DepthwiseConv2D"}
    fill_shapes(graph)
    for keras_layer in model.layers:
        shape = keras_layer.output_shape
        shape = shape[0] if isinstance(shape, list) else shape
        assert graph.layer(keras_layer.name).node_shapes == [[tuple(shape)]], keras_layer.name


def test_fill_follows_the_keras_version_of_the_file(keras2: Any, keras3: Any) -> None:
    """Where Keras 2 and 3 disagree, fill_shapes follows ``metadata["keras_version"]``."""
    expected = {}
    for version, module in ((2, keras2), (3, keras3)):
        a, b = module.Input((None, 5)), module.Input((4, 5))
        expected[version] = _shape(module.layers.Add()([a, b]))
    assert expected[2] != expected[3]  # the case is one where they differ
    for version in (2, 3):
        graph = ModelGraph(name="m", format="keras-h5", metadata={"keras_version": f"{version}.1.0"})
        graph.layers = [
            Layer("a", "InputLayer", {"batch_input_shape": [None, None, 5]}),
            Layer("b", "InputLayer", {"batch_input_shape": [None, 4, 5]}),
            Layer("add", "Add", {}, inbound=[[Inbound("a"), Inbound("b")]]),
        ]
        fill_shapes(graph)
        assert graph.layer("add").node_shapes == [[expected[version]]]


@pytest.mark.parametrize("fmt", ["keras", "h5"])
@pytest.mark.parametrize("key", ["nested_frozen", "nested_functional"])
def test_nested_model_layers_get_shapes_when_the_row_is_recorded(key, fmt):
    """A file that records a nested model's row shape left the nested model's own layers
    unfilled (its output layer, in ``.h5`` every layer): their shape unknown, and the
    nested model's MACs '?'.  Found by the Keras sweep (Keras 3 ``.h5`` of a model nesting
    a Sequential: total MACs 40 as a lower bound, 120 from the ``.keras``)."""
    import inspector
    from helpers.keras_models import keras_model, saved_model
    from inspector.analysis.macs import count_macs

    model = keras_model(key)

    def keras_layers(m, prefix=""):
        for lay in m.layers:
            yield f"{prefix}{lay.name}", lay
            if hasattr(lay, "layers"):
                yield from keras_layers(lay, f"{prefix}{lay.name}/")

    want = {path: tuple(lay.output.shape) for path, lay in keras_layers(model)
            if "/" in path and type(lay).__name__ != "InputLayer"}
    graph = inspector.load(saved_model(key, fmt))
    got = {path: lay.node_shapes[0][0] for path, lay in graph.walk() if path in want}
    assert got == want
    assert count_macs(graph).complete
